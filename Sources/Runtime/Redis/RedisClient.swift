import Foundation
import Logging

/// A shared Redis connection that comes back by itself: when Redis goes away, commands fail at once
/// with `RedisError.unavailable` (callers keep serving what they can), and the next command after
/// the backoff delay reconnects — never a storm of reconnects, never a caller blocked on a dead
/// socket.
public actor RedisClient {
    public let url: RedisURL
    private var connection: RedisConnection?
    private var failures = 0
    private var retryAt: ContinuousClock.Instant?
    private let backoff: Backoff
    private let logger: Logger

    public init(url: RedisURL, backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5), jitter: 0.2), logger: Logger) {
        self.url = url
        self.backoff = backoff
        self.logger = logger
    }

    public func send(_ arguments: [String]) async throws(RedisError) -> RedisReply {
        let connection = try await connected()
        do {
            return try await connection.send(arguments)
        } catch {
            lost(connection, error)
            throw error
        }
    }

    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisReply] {
        let connection = try await connected()
        do {
            return try await connection.pipeline(commands)
        } catch {
            lost(connection, error)
            throw error
        }
    }

    /// A separate connection for pub/sub: a subscribed connection takes no other commands.
    public func subscribe(_ channels: [String]) async throws(RedisError) -> (RedisConnection, AsyncStream<RedisConnection.Message>) {
        let subscriber = try await RedisConnection.connect(url)
        return (subscriber, try await subscriber.subscribe(channels))
    }

    public func close() async {
        await connection?.close()
        connection = nil
    }

    private func connected() async throws(RedisError) -> RedisConnection {
        if let connection, connection.isActive { return connection }
        if let retryAt, ContinuousClock.now < retryAt {
            throw .unavailable("reconnecting after \(failures) failed attempt(s)")
        }
        do {
            let fresh = try await RedisConnection.connect(url)
            if failures > 0 { logger.info("reconnected to Redis", metadata: ["after": .stringConvertible(failures)]) }
            connection = fresh
            failures = 0
            retryAt = nil
            return fresh
        } catch {
            failures += 1
            retryAt = .now + backoff.delay(forAttempt: failures)
            throw error
        }
    }

    private func lost(_ failed: RedisConnection, _ error: RedisError) {
        guard case .unavailable = error, connection === failed else { return }
        connection = nil
    }
}
