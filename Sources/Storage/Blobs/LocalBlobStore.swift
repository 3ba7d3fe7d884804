import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Blobs as files under a directory: `<root>/<tenant>/<2 hex>/<uuid>`. A blob is written to
/// `<root>/.tmp/<uuid>`, fsynced, renamed into place and its directory fsynced; only then does
/// the caller commit the object's row. File I/O goes through `BlobFileIO` (io_uring or POSIX calls on
/// NIO's blocking pool), never on an event loop.
public final class LocalBlobStore: BlobStore {
    public let root: String
    let io: any BlobFileIO

    /// Creates the directories; throws when `root` cannot be written.
    public init(root: String, io: any BlobFileIO) throws {
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
        self.io = io
        let manager = FileManager.default
        try manager.createDirectory(atPath: self.root + "/.tmp", withIntermediateDirectories: true)
        guard manager.isWritableFile(atPath: self.root + "/.tmp") else {
            throw StorageError(status: 500, error: "internal", code: "MB907", message: "the storage directory \(self.root) is not writable")
        }
    }

    public var summary: String { "local \(root) (io: \(io.name))" }
    public var resumableArea: LocalBlobStore? { self }

    public func create(tenant: String) async throws -> any BlobWriter {
        let id = UUID().uuidString.lowercased()
        let key = "\(tenant)/\(id.prefix(2))/\(id)"
        let temporary = "\(root)/.tmp/\(id)"
        let descriptor = try await io.create(temporary)
        return LocalBlobWriter(key: key, temporary: temporary, final: path(of: key), descriptor: descriptor, io: io)
    }

    public func open(_ key: String) async throws -> any BlobReader {
        guard Self.isKey(key) else { throw StorageError.objectNotFound() }
        do {
            let (descriptor, size) = try await io.openForReading(path(of: key))
            return LocalBlobReader(descriptor: descriptor, size: size, io: io)
        } catch let error as FileIOError where error.code == ENOENT {
            throw StorageError.objectNotFound()
        }
    }

    public func readWhole(_ key: String, limit: Int) async throws -> ByteBuffer? {
        guard Self.isKey(key) else { throw StorageError.objectNotFound() }
        do {
            return try await io.readWhole(path(of: key), limit: limit)
        } catch let error as FileIOError where error.code == ENOENT {
            throw StorageError.objectNotFound()
        }
    }

    public func delete(_ key: String) async {
        guard Self.isKey(key) else { return }
        try? await io.remove(path(of: key))
    }

    public func deleteAll(tenant: String) async {
        guard !tenant.isEmpty, !tenant.contains("/"), !tenant.hasPrefix(".") else { return }
        let directory = "\(root)/\(tenant)"
        _ = try? await NIOThreadPool.singleton.runIfActive { try FileManager.default.removeItem(atPath: directory) }
    }

    public func sweep(keeping: Set<String>, olderThan: Duration) async throws -> Int {
        let root = self.root
        let cutoff = Date().addingTimeInterval(-Double(olderThan.components.seconds))
        return try await NIOThreadPool.singleton.runIfActive {
            let manager = FileManager.default
            func old(_ path: String) -> Bool {
                guard let modified = (try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return false }
                return modified < cutoff
            }
            var removed = 0
            for name in (try? manager.contentsOfDirectory(atPath: root + "/.tmp")) ?? [] where old("\(root)/.tmp/\(name)") {
                try? manager.removeItem(atPath: "\(root)/.tmp/\(name)")
                removed += 1
            }
            for tenant in (try? manager.contentsOfDirectory(atPath: root)) ?? [] where !tenant.hasPrefix(".") {
                for shard in (try? manager.contentsOfDirectory(atPath: "\(root)/\(tenant)")) ?? [] {
                    for blob in (try? manager.contentsOfDirectory(atPath: "\(root)/\(tenant)/\(shard)")) ?? [] {
                        let key = "\(tenant)/\(shard)/\(blob)"
                        if !keeping.contains(key), old("\(root)/\(key)") {
                            try? manager.removeItem(atPath: "\(root)/\(key)")
                            removed += 1
                        }
                    }
                }
            }
            return removed
        }
    }

    func path(of key: String) -> String { "\(root)/\(key)" }

    /// Keys are made here; anything else (a crafted row, a path) is refused before touching disk.
    static func isKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 3 && parts.allSatisfy { !$0.isEmpty && !$0.hasPrefix(".") }
            && parts[2].allSatisfy { $0.isHexDigit || $0 == "-" } && parts[1].count == 2
    }
}

final class LocalBlobWriter: BlobWriter, @unchecked Sendable {
    let key: String
    private let temporary: String
    private let final: String
    private let io: any BlobFileIO
    // Driven by one task at a time (the upload's); the lock only makes that safe to state.
    private let lock = NIOLock()
    private var descriptor: CInt?
    private var written = 0
    private var hash = Insecure.MD5()
    private var committed = false

    init(key: String, temporary: String, final: String, descriptor: CInt, io: any BlobFileIO) {
        self.key = key
        self.temporary = temporary
        self.final = final
        self.descriptor = descriptor
        self.io = io
    }

    var size: Int { lock.withLock { written } }

    func append(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        let (descriptor, offset) = lock.withLock { (self.descriptor, written) }
        guard let descriptor else { throw FileIOError(code: EBADF, operation: "write") }
        // The MD5 (the ETag) is computed beside the write, on the pool, not after it.
        async let hashed: Void = NIOThreadPool.singleton.runIfActive { [self] in
            lock.withLock { buffer.withUnsafeReadableBytes { hash.update(bufferPointer: $0) } }
        }
        try await io.write(descriptor, buffer, at: offset)
        try await hashed
        lock.withLock { written += buffer.readableBytes }
    }

    func commit() async throws -> String {
        guard let descriptor = lock.withLock({ self.descriptor }) else { throw FileIOError(code: EBADF, operation: "commit") }
        try await io.sync(descriptor)
        try await io.close(descriptor)
        lock.withLock { self.descriptor = nil }
        try await io.rename(temporary, to: final)
        lock.withLock { committed = true }
        return lock.withLock { hash.finalize().map { String(format: "%02x", $0) }.joined() }
    }

    func abort() async {
        let (descriptor, committed) = lock.withLock { () -> (CInt?, Bool) in
            defer { self.descriptor = nil }
            return (self.descriptor, self.committed)
        }
        if let descriptor { try? await io.close(descriptor) }
        if !committed { try? await io.remove(temporary) }
    }
}

final class LocalBlobReader: BlobReader, @unchecked Sendable {
    let size: Int
    private let io: any BlobFileIO
    private let lock = NIOLock()
    private var descriptor: CInt?

    init(descriptor: CInt, size: Int, io: any BlobFileIO) {
        self.descriptor = descriptor
        self.size = size
        self.io = io
    }

    func read(offset: Int, length: Int) async throws -> ByteBuffer {
        guard let descriptor = lock.withLock({ self.descriptor }) else { throw FileIOError(code: EBADF, operation: "read") }
        return try await io.read(descriptor, at: offset, length: min(length, max(0, size - offset)))
    }

    func close() async {
        let descriptor = lock.withLock { () -> CInt? in
            defer { self.descriptor = nil }
            return self.descriptor
        }
        if let descriptor { try? await io.close(descriptor) }
    }

    deinit {
        // A reader dropped without close (a cancelled download) must not leak its descriptor.
        if let descriptor { _ = Glibc.close(descriptor) }
    }
}
