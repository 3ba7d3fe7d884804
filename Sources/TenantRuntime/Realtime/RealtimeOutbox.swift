import Runtime

/// What waits to be written to one WebSocket client. Bounded: a client that falls `limit`
/// messages (or `byteLimit` bytes) behind is sent one `system` message saying so and disconnected,
/// so a slow consumer costs a bounded amount of memory and never slows delivery to anyone else.
public final class RealtimeOutbox: @unchecked Sendable {
    public enum Item {
        case message(String)
        /// Write this last message, then close the socket.
        case closing(String)
    }

    private let lock = Lock()
    private var queue: [String] = []
    private var head = 0
    private var closingMessage: String?
    private var finished = false
    private var queuedBytes = 0
    private let limit: Int
    private let byteLimit: Int
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>
    /// Used by the single writer only.
    private nonisolated(unsafe) lazy var waiter = signals.makeAsyncIterator()

    public init(limit: Int, byteLimit: Int = 32 << 20) {
        self.limit = limit
        self.byteLimit = byteLimit
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a message; false when the client was too far behind (it is being disconnected).
    @discardableResult
    public func send(_ text: String, overflow: @autoclosure () -> String) -> Bool {
        let accepted: Bool = lock.withLock {
            guard closingMessage == nil, !finished else { return false }
            if queue.count - head >= limit || queuedBytes + text.utf8.count > byteLimit {
                closingMessage = overflow()
                queue.removeAll()
                head = 0
                queuedBytes = 0
                return false
            }
            queue.append(text)
            queuedBytes += text.utf8.count
            return true
        }
        signal.yield()
        return accepted
    }

    /// Ends the stream after `text` (a server-side close: moved tenant, quota).
    public func close(with text: String) {
        lock.withLock {
            if closingMessage == nil { closingMessage = text }
        }
        signal.yield()
    }

    public func finish() {
        lock.withLock { finished = true }
        signal.finish()
    }

    public var pending: Int { lock.withLock { queue.count - head } }

    /// The next message for the writer (its only caller), waiting for one; nil once finished.
    /// Messages leave the outbox only when the writer is ready for them, so a stuck writer makes
    /// the outbox — and only the outbox, which is bounded — grow.
    public func next() async -> Item? {
        while true {
            if let item = take() { return item }
            if lock.withLock({ finished }) { return nil }
            guard await waiter.next() != nil else { return take() }
        }
    }

    private func take() -> Item? {
        lock.withLock {
            if let closing = closingMessage {
                closingMessage = nil
                finished = true
                queue.removeAll()
                head = 0
                queuedBytes = 0
                return .closing(closing)
            }
            guard head < queue.count else {
                queue.removeAll(keepingCapacity: true)
                head = 0
                return nil
            }
            queuedBytes -= queue[head].utf8.count
            defer {
                head += 1
                if head > 1024 && head * 2 > queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
            }
            return .message(queue[head])
        }
    }
}
