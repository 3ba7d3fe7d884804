import CLibURing
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// File reads, writes and syncs through one io_uring: callers' requests are submitted under a
/// lock from whatever thread they run on, and one thread of its own waits for completions and
/// resumes the callers. Opening, closing and renaming stay POSIX calls on the blocking pool;
/// they are rare. Bytes are copied into memory the ring owns until the kernel is done with them.
public final class UringFileIO: BlobFileIO, @unchecked Sendable {
    private let ring: OpaquePointer
    private let lock = NIOLock()
    private var waiting: [UInt64: CheckedContinuation<Int32, Never>] = [:]
    private var nextTag: UInt64 = 1
    private let posix = PosixFileIO()

    /// nil where the kernel or its sandbox refuses io_uring (errno in `error`).
    public static func make(entries: UInt32 = 256) -> (io: UringFileIO?, error: Int32) {
        var error: Int32 = 0
        guard let ring = curing_new(entries, &error) else { return (nil, error) }
        return (UringFileIO(ring: ring), 0)
    }

    private init(ring: OpaquePointer) {
        self.ring = ring
        let thread = Thread { [unowned self] in self.completions() }
        thread.name = "minibaas-io-uring"
        thread.start()
    }

    public var name: String { "io_uring" }

    private func completions() {
        while true {
            var tag: UInt64 = 0
            var result: Int32 = 0
            let status = curing_wait(ring, &tag, &result)
            if status == -EINTR { continue }
            guard status == 0 else { continue }
            let continuation = lock.withLock { waiting.removeValue(forKey: tag) }
            continuation?.resume(returning: result)
        }
    }

    /// Submits one request and waits for its result (bytes, or -errno).
    private func submit(_ prepare: (UInt64) -> Int32) async -> Int32 {
        await withCheckedContinuation { continuation in
            lock.withLock {
                let tag = nextTag
                nextTag += 1
                waiting[tag] = continuation
                let submitted = prepare(tag)
                if submitted < 0 {
                    waiting.removeValue(forKey: tag)
                    continuation.resume(returning: submitted)
                }
            }
        }
    }

    public func create(_ path: String) async throws -> CInt { try await posix.create(path) }
    public func openForReading(_ path: String) async throws -> (descriptor: CInt, size: Int) { try await posix.openForReading(path) }
    public func close(_ descriptor: CInt) async throws { try await posix.close(descriptor) }
    public func rename(_ from: String, to: String) async throws { try await posix.rename(from, to: to) }
    public func remove(_ path: String) async throws { try await posix.remove(path) }
    public func readWhole(_ path: String, limit: Int) async throws -> ByteBuffer? { try await posix.readWhole(path, limit: limit) }

    public func write(_ descriptor: CInt, _ buffer: ByteBuffer, at offset: Int) async throws {
        let count = buffer.readableBytes
        guard count > 0 else { return }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        defer { memory.deallocate() }
        buffer.withUnsafeReadableBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: count) }
        var done = 0
        while done < count {
            let result = await submit { tag in
                curing_write(ring, descriptor, memory + done, UInt32(count - done), UInt64(offset + done), tag)
            }
            if result == -EINTR || result == -EAGAIN { continue }
            guard result > 0 else { throw FileIOError(code: result == 0 ? EIO : -result, operation: "write") }
            done += Int(result)
        }
    }

    public func read(_ descriptor: CInt, at offset: Int, length: Int) async throws -> ByteBuffer {
        guard length > 0 else { return ByteBuffer() }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 16)
        defer { memory.deallocate() }
        var done = 0
        while done < length {
            let result = await submit { tag in
                curing_read(ring, descriptor, memory + done, UInt32(length - done), UInt64(offset + done), tag)
            }
            if result == -EINTR || result == -EAGAIN { continue }
            guard result >= 0 else { throw FileIOError(code: -result, operation: "read") }
            if result == 0 { break }
            done += Int(result)
        }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: memory, count: done))
    }

    public func sync(_ descriptor: CInt) async throws {
        let result = await submit { tag in curing_fsync(ring, descriptor, tag) }
        guard result >= 0 else { throw FileIOError(code: -result, operation: "fsync") }
    }
}
