import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Runtime

/// Hummingbird's connection handling, run with the connection's event loop as its task's executor
/// preference (`EventLoopTaskExecutor`): reading a request, the whole responder chain and writing
/// the answer continue on the socket's loop instead of being enqueued again at every call into
/// nonisolated async code (~100 jobs per REST read before, measured with a uprobe).
struct LoopBoundChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner

    init(_ inner: Inner) {
        self.inner = inner
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await EventLoopTaskExecutor.preferring(value.channel.eventLoop) {
            await inner.handle(value: value, logger: logger)
        }
    }
}
