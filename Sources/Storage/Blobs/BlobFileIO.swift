import Foundation
import NIOCore
import NIOPosix

/// A failed file operation with its errno.
public struct FileIOError: Error, Sendable, CustomStringConvertible {
    public let code: CInt
    public let operation: String
    public init(code: CInt, operation: String) {
        self.code = code
        self.operation = operation
    }
    public var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// The file calls the local blob store makes. Every call may block, so implementations run them
/// off the event loops.
public protocol BlobFileIO: Sendable {
    var name: String { get }
    /// Creates a new file (it must not exist) for writing.
    func create(_ path: String) async throws -> CInt
    func openForReading(_ path: String) async throws -> (descriptor: CInt, size: Int)
    func write(_ descriptor: CInt, _ buffer: ByteBuffer, at offset: Int) async throws
    func read(_ descriptor: CInt, at offset: Int, length: Int) async throws -> ByteBuffer
    func sync(_ descriptor: CInt) async throws
    func close(_ descriptor: CInt) async throws
    /// Renames into place (creating the parent directory) and syncs the directory.
    func rename(_ from: String, to: String) async throws
    func remove(_ path: String) async throws
    /// The whole file when it has at most `limit` bytes (nil when larger), in one call.
    func readWhole(_ path: String, limit: Int) async throws -> ByteBuffer?
}

/// POSIX calls (`pwrite`, `pread`, `fsync`…) on NIO's blocking thread pool: works everywhere.
public struct PosixFileIO: BlobFileIO {
    let pool: NIOThreadPool

    public init(pool: NIOThreadPool = .singleton) {
        self.pool = pool
    }

    public var name: String { "posix" }

    public func create(_ path: String) async throws -> CInt {
        try await pool.runIfActive {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw FileIOError(code: errno, operation: "create") }
            return descriptor
        }
    }

    public func openForReading(_ path: String) async throws -> (descriptor: CInt, size: Int) {
        try await pool.runIfActive {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw FileIOError(code: errno, operation: "open") }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else {
                let code = errno
                Glibc.close(descriptor)
                throw FileIOError(code: code, operation: "stat")
            }
            return (descriptor, Int(info.st_size))
        }
    }

    public func write(_ descriptor: CInt, _ buffer: ByteBuffer, at offset: Int) async throws {
        try await pool.runIfActive {
            try buffer.withUnsafeReadableBytes { bytes in
                var done = 0
                while done < bytes.count {
                    let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw FileIOError(code: errno, operation: "write")
                    }
                    done += result
                }
            }
        }
    }

    public func read(_ descriptor: CInt, at offset: Int, length: Int) async throws -> ByteBuffer {
        try await pool.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: length)
            let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { space in
                var done = 0
                while done < length {
                    let result = pread(descriptor, space.baseAddress! + done, length - done, off_t(offset + done))
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw FileIOError(code: errno, operation: "read")
                    }
                    if result == 0 { break }
                    done += result
                }
                return done
            }
            _ = count
            return buffer
        }
    }

    public func sync(_ descriptor: CInt) async throws {
        try await pool.runIfActive {
            guard fsync(descriptor) == 0 else { throw FileIOError(code: errno, operation: "fsync") }
        }
    }

    public func close(_ descriptor: CInt) async throws {
        try await pool.runIfActive {
            guard Glibc.close(descriptor) == 0 else { throw FileIOError(code: errno, operation: "close") }
        }
    }

    public func rename(_ from: String, to: String) async throws {
        try await pool.runIfActive {
            let directory = (to as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            guard Glibc.rename(from, to) == 0 else { throw FileIOError(code: errno, operation: "rename") }
            // The rename is durable only once the directory entry is.
            let handle = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if handle >= 0 {
                fsync(handle)
                Glibc.close(handle)
            }
        }
    }

    public func remove(_ path: String) async throws {
        try await pool.runIfActive {
            guard unlink(path) == 0 || errno == ENOENT else { throw FileIOError(code: errno, operation: "unlink") }
        }
    }

    public func readWhole(_ path: String, limit: Int) async throws -> ByteBuffer? {
        try await pool.runIfActive {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw FileIOError(code: errno, operation: "open") }
            defer { Glibc.close(descriptor) }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { throw FileIOError(code: errno, operation: "stat") }
            let size = Int(info.st_size)
            guard size <= limit else { return nil }
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { space in
                var done = 0
                while done < size {
                    let result = pread(descriptor, space.baseAddress! + done, size - done, off_t(done))
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw FileIOError(code: errno, operation: "read")
                    }
                    if result == 0 { break }
                    done += result
                }
                return done
            }
            return buffer
        }
    }
}
