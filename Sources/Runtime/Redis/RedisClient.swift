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
    private let commandTimeout: Duration
    private let connectTimeout: Duration
    /// The one connection attempt in flight: callers arriving meanwhile wait for it rather than
    /// each opening (and leaking) a connection of their own.
    private var connecting: Task<RedisConnection, any Error>?

    /// `commandTimeout`/`connectTimeout`: how long a caller may wait for Redis — seconds for the
    /// cluster's own bookkeeping, a fraction of that where Redis is only an optimisation (a cache).
    public init(
        url: RedisURL, backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(5), jitter: 0.2),
        commandTimeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(3), logger: Logger
    ) {
        self.url = url
        self.backoff = backoff
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    public func send(_ arguments: [String]) async throws(RedisError) -> RedisReply {
        let connection = try await connected()
        do {
            return try await connection.send(arguments, timeout: commandTimeout)
        } catch {
            lost(connection, error)
            throw error
        }
    }

    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisReply] {
        let connection = try await connected()
        do {
            return try await connection.pipeline(commands, timeout: commandTimeout)
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
        if let connecting {
            do {
                return try await connecting.value
            } catch {
                throw error as? RedisError ?? .unavailable("\(error)")
            }
        }
        if let retryAt, ContinuousClock.now < retryAt {
            throw .unavailable("reconnecting after \(failures) failed attempt(s)")
        }
        let (url, timeout) = (self.url, connectTimeout)
        let attempt = Task { () async throws -> RedisConnection in try await RedisConnection.connect(url, timeout: timeout) }
        connecting = attempt
        defer { connecting = nil }
        do {
            let fresh = try await attempt.value
            if failures > 0 { logger.info("reconnected to Redis", metadata: ["after": .stringConvertible(failures)]) }
            if let previous = connection, previous !== fresh { Task { await previous.close() } }
            connection = fresh
            failures = 0
            retryAt = nil
            return fresh
        } catch {
            failures += 1
            retryAt = .now + backoff.delay(forAttempt: failures)
            throw error as? RedisError ?? .unavailable("\(error)")
        }
    }

    private func lost(_ failed: RedisConnection, _ error: RedisError) {
        guard case .unavailable = error, connection === failed else { return }
        connection = nil
    }
}
