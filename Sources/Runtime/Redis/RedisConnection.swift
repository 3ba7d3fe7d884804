import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis over swift-nio, RESP through hiredis. Commands are pipelined: each is
/// written at once and its reply promise queued in order, so many callers share one connection
/// without waiting for each other's round trips. A connection in subscriber mode delivers pushed
/// messages to its stream.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: RedisHandler

    public struct Message: Sendable, Equatable {
        public var channel: String
        public var payload: String
    }

    private init(channel: any Channel, handler: RedisHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, authenticates and selects the database the URL names.
    public static func connect(_ url: RedisURL, timeout: Duration = .seconds(3)) async throws(RedisError) -> RedisConnection {
        let handler = RedisHandler()
        do {
            let sslContext = url.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: url.host))
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: url.host, port: url.port).get()
            let connection = RedisConnection(channel: channel, handler: handler)
            if let password = url.password {
                let reply = try await connection.send(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password], timeout: timeout)
                if case .error(let message) = reply { throw RedisError.server(message) }
            }
            if url.database != 0 {
                let reply = try await connection.send(["SELECT", String(url.database)], timeout: timeout)
                if case .error(let message) = reply { throw RedisError.server(message) }
            }
            return connection
        } catch let error as RedisError {
            throw error
        } catch {
            throw .unavailable("\(url.host):\(url.port): \(error)")
        }
    }

    public var isActive: Bool { channel.isActive }

    /// Sends one command; an error reply comes back as `.error`, not thrown.
    public func send(_ arguments: [String], timeout: Duration = .seconds(5)) async throws(RedisError) -> RedisReply {
        try await pipeline([arguments], timeout: timeout)[0]
    }

    /// Writes every command at once, then collects the replies in order.
    public func pipeline(_ commands: [[String]], timeout: Duration = .seconds(5)) async throws(RedisError) -> [RedisReply] {
        guard channel.isActive else { throw .unavailable("the connection is closed") }
        let loop = channel.eventLoop
        var bytes: [UInt8] = []
        for command in commands { bytes += RESPCodec.format(command) }
        let promises = commands.map { _ in loop.makePromise(of: RedisReply.self) }
        let buffer = channel.allocator.buffer(bytes: bytes)
        let handler = self.handler
        let channel = self.channel
        // Queue and write on the loop together, so the queue's order is the wire's order.
        loop.execute {
            handler.enqueue(promises)
            channel.writeAndFlush(buffer, promise: nil)
        }
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) {
            for promise in promises { promise.fail(RedisError.timedOut) }
        }
        defer { timer.cancel() }
        var replies: [RedisReply] = []
        for promise in promises {
            do {
                replies.append(try await promise.futureResult.get())
            } catch let error as RedisError {
                // A command that timed out leaves the stream out of step with the queue: start over.
                if error == .timedOut { channel.close(promise: nil) }
                throw error
            } catch {
                throw .unavailable("\(error)")
            }
        }
        return replies
    }

    /// Subscribes this connection (which then takes no other commands) to `channels`.
    public func subscribe(_ channels: [String]) async throws(RedisError) -> AsyncStream<Message> {
        let (stream, continuation) = AsyncStream<Message>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let handler = self.handler
        do {
            try await channel.eventLoop.submit { handler.subscriber = continuation }.get()
        } catch {
            throw .unavailable("\(error)")
        }
        let replies = try await pipeline(channels.map { ["SUBSCRIBE", $0] })
        for reply in replies { if case .error(let message) = reply { throw .server(message) } }
        return stream
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Reads replies on the connection's event loop; all its state is touched only there.
final class RedisHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let codec = RESPCodec()
    private var pending = CircularBuffer<EventLoopPromise<RedisReply>>()
    var subscriber: AsyncStream<RedisConnection.Message>.Continuation?

    func enqueue(_ promises: [EventLoopPromise<RedisReply>]) {
        pending.append(contentsOf: promises)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { bytes in try codec.feed(bytes) }
            while let reply = try codec.next() {
                if let subscriber, let items = reply.array, items.count == 3, items[0].string == "message",
                    let channel = items[1].string, let payload = items[2].string
                {
                    subscriber.yield(RedisConnection.Message(channel: channel, payload: payload))
                    continue
                }
                guard let promise = pending.popFirst() else { continue }
                promise.succeed(reply)
            }
        } catch {
            failAll(error as? RedisError ?? .protocolError("\(error)"))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(.unavailable("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.unavailable("the connection was closed"))
        subscriber?.finish()
        subscriber = nil
        context.fireChannelInactive()
    }

    private func failAll(_ error: RedisError) {
        while let promise = pending.popFirst() { promise.fail(error) }
    }
}
