import NIOCore

/// Where objects' bytes live: each version of an object is one blob under a key the store
/// chooses (never derived from the object's name). A blob is written whole or not at all: a
/// writer's bytes become visible only at `commit`, after they are durable.
public protocol BlobStore: Sendable {
    /// A new blob for `tenant`, written through the returned writer.
    func create(tenant: String) async throws -> any BlobWriter
    /// The blob's bytes, read in pieces; throws `StorageError.objectNotFound` when it is gone.
    func open(_ key: String) async throws -> any BlobReader
    /// A small blob whole, in one step (open, read, close), when it has at most `limit` bytes;
    /// nil when it is larger.
    func readWhole(_ key: String, limit: Int) async throws -> ByteBuffer?
    /// Removes a blob; a missing one is not an error.
    func delete(_ key: String) async
    /// Removes blobs not in `keeping` and leftover temporary files, older than `olderThan` (after
    /// a crash, an upload may have left either; younger ones may be uploads in flight, here or on
    /// another node sharing the store). Answers how many it removed.
    func sweep(keeping: Set<String>, olderThan: Duration) async throws -> Int
    /// Removes every blob of a tenant (the tenant was deleted).
    func deleteAll(tenant: String) async
    /// What the store is, for the admin endpoint ("local (io: posix)", "s3 …").
    var summary: String { get }
    /// Local files where resumable uploads gather until complete.
    var resumableArea: LocalBlobStore? { get }
}

public protocol BlobWriter: AnyObject, Sendable {
    var key: String { get }
    /// Bytes written so far.
    var size: Int { get }
    func append(_ buffer: ByteBuffer) async throws
    /// Makes the bytes durable and visible under `key`; answers the hex MD5 of all of them.
    func commit() async throws -> String
    /// Discards what was written. Safe to call after a failed or successful commit.
    func abort() async
}

public protocol BlobReader: AnyObject, Sendable {
    var size: Int { get }
    /// Up to `length` bytes from `offset`; fewer only at the end.
    func read(offset: Int, length: Int) async throws -> ByteBuffer
    func close() async
}

extension BlobStore {
    /// A blob from start to end into `sink` in 1 MiB pieces, closed whatever happens.
    public func pour(_ key: String, into sink: (ByteBuffer) async throws -> Void) async throws {
        let reader = try await open(key)
        do {
            var offset = 0
            while offset < reader.size {
                let piece = try await reader.read(offset: offset, length: 1 << 20)
                guard piece.readableBytes > 0 else { break }
                offset += piece.readableBytes
                try await sink(piece)
            }
            await reader.close()
        } catch {
            await reader.close()
            throw error
        }
    }
}
