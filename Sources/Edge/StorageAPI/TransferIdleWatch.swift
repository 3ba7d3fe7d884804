import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// Storage transfers run without the tenant's request deadline (a large upload may take long),
/// so instead each one is watched for silence: when no bytes moved either way for `timeout`, its
/// connection is closed, which ends the transfer with nothing committed.
final class TransferIdleWatch: Sendable {
    private let lastActivity: NIOLockedValueBox<NIODeadline>
    private let task: RepeatedTask

    init(channel: any Channel, timeout: TimeAmount) {
        let lastActivity = NIOLockedValueBox(NIODeadline.now())
        self.lastActivity = lastActivity
        let check = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, 10_000_000))
        task = channel.eventLoop.scheduleRepeatedTask(initialDelay: check, delay: check) { task in
            if NIODeadline.now() - lastActivity.withLockedValue({ $0 }) >= timeout {
                task.cancel()
                channel.close(promise: nil)
            }
        }
    }

    func touch() {
        lastActivity.withLockedValue { $0 = .now() }
    }

    func stop() {
        task.cancel()
    }

    /// `MINIBAAS_STORAGE_IDLE_TIMEOUT_MS`, 30 s unless set.
    static let timeout: TimeAmount = {
        let milliseconds = Int64(ProcessInfo.processInfo.environment["MINIBAAS_STORAGE_IDLE_TIMEOUT_MS"] ?? "") ?? 30_000
        return .milliseconds(min(max(milliseconds, 100), 3_600_000))
    }()
}

extension TransferIdleWatch {
    /// Runs a storage route with its request body watched, then its response body (if it is a
    /// download) until written; a failed route ends the watch at once.
    static func watching(
        _ request: Request, _ context: EdgeContext, _ route: (Request, EdgeContext) async throws -> Response
    ) async throws -> Response {
        let watch = TransferIdleWatch(channel: context.channel, timeout: timeout)
        var watched = request
        watched.body = RequestBody(asyncSequence: WatchedBody(base: request.body, watch: watch))
        do {
            return watch.wrap(try await route(watched, context), method: request.method)
        } catch {
            watch.stop()
            throw error
        }
    }

    /// A download's body is watched as it is written; any other answer is small and ends the watch.
    private func wrap(_ response: Response, method: HTTPRequest.Method) -> Response {
        guard method != .head, response.status == .ok || response.status == .partialContent else {
            stop()
            return response
        }
        var response = response
        let original = response.body
        response.body = ResponseBody(contentLength: original.contentLength) { [self] writer in
            defer { stop() }
            try await original.write(WatchedWriter(inner: writer, watch: self))
        }
        return response
    }
}

/// A request body that tells its watch of every piece.
struct WatchedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let watch: TransferIdleWatch

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let watch: TransferIdleWatch
        mutating func next() async throws -> ByteBuffer? {
            let piece = try await base.next()
            watch.touch()
            return piece
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), watch: watch) }
}

/// A response writer that tells its watch of every piece written.
struct WatchedWriter: ResponseBodyWriter {
    var inner: any ResponseBodyWriter
    let watch: TransferIdleWatch

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await inner.write(buffer)
        watch.touch()
    }

    mutating func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        try await inner.write(contentsOf: buffers)
        watch.touch()
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await inner.finish(trailingHeaders)
    }
}
