import Crypto
import Foundation
import NIOCore
import NIOPosix

/// Resumable (TUS) uploads on local disk: the bytes so far in `<root>/.uploads/<id>`, fsynced
/// before an offset is acknowledged, and a manifest beside them (`<id>.json`) saying what they
/// will become. Both survive a crash of the node; the offset is the file's size. On completion
/// the file is renamed into place as a blob, like any upload's temporary file.
extension LocalBlobStore {
    var uploadsDirectory: String { root + "/.uploads" }

    static func isUploadID(_ id: String) -> Bool {
        id.count == 36 && id.allSatisfy { $0.isHexDigit || $0 == "-" }
    }

    func uploadPath(_ id: String) -> String { "\(uploadsDirectory)/\(id)" }

    public func createResumable(id: String, manifest: [UInt8]) async throws {
        let directory = uploadsDirectory, path = uploadPath(id)
        try await NIOThreadPool.singleton.runIfActive {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // The manifest first: a data file without one is an orphan the sweep removes.
            guard FileManager.default.createFile(atPath: path + ".json", contents: Data(manifest)) else {
                throw FileIOError(code: errno, operation: "create manifest")
            }
        }
        let descriptor = try await io.create(path)
        try await io.sync(descriptor)
        try await io.close(descriptor)
    }

    /// The manifest and the bytes received so far; nil when there is no such upload.
    public func resumable(id: String) async throws -> (manifest: [UInt8], offset: Int)? {
        guard Self.isUploadID(id) else { return nil }
        let path = uploadPath(id)
        return try await NIOThreadPool.singleton.runIfActive {
            guard let manifest = FileManager.default.contents(atPath: path + ".json"),
                let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int
            else { return nil }
            return (Array(manifest), size)
        }
    }

    /// Appends pieces from `offset` (which must be the file's size) and syncs them; answers the
    /// new size. A failure midway keeps what was written and synced.
    public func appendResumable(id: String, at offset: Int, pieces: (_ write: (ByteBuffer) async throws -> Void) async throws -> Void) async throws -> Int {
        let path = uploadPath(id)
        let descriptor: CInt = try await NIOThreadPool.singleton.runIfActive {
            let descriptor = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw FileIOError(code: errno, operation: "open upload") }
            return descriptor
        }
        var position = offset
        do {
            try await pieces { piece in
                try await io.write(descriptor, piece, at: position)
                position += piece.readableBytes
            }
        } catch {
            // What arrived before the failure stays, acknowledged at the next HEAD.
            try? await io.sync(descriptor)
            try? await io.close(descriptor)
            throw error
        }
        try await io.sync(descriptor)
        try await io.close(descriptor)
        return position
    }

    /// Turns a complete upload into a blob of `tenant`: its MD5 read back, the file renamed into
    /// place, the manifest removed.
    public func finishResumable(id: String, tenant: String) async throws -> (key: String, size: Int, md5: String) {
        let path = uploadPath(id)
        let (descriptor, size) = try await io.openForReading(path)
        var hash = Insecure.MD5()
        var offset = 0
        do {
            while offset < size {
                let piece = try await io.read(descriptor, at: offset, length: min(1 << 20, size - offset))
                guard piece.readableBytes > 0 else { break }
                piece.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
                offset += piece.readableBytes
            }
            try await io.close(descriptor)
        } catch {
            try? await io.close(descriptor)
            throw error
        }
        let blob = UUID().uuidString.lowercased()
        let key = "\(tenant)/\(blob.prefix(2))/\(blob)"
        try await io.rename(path, to: self.path(of: key))
        try? await io.remove(path + ".json")
        return (key, size, hash.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// How many uploads of `tenant` are in progress, and the bytes they will take when complete.
    public func openUploads(tenant: String) async -> (count: Int, bytes: Int) {
        let directory = uploadsDirectory
        return (try? await NIOThreadPool.singleton.runIfActive {
            var count = 0, bytes = 0
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") {
                guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)"),
                    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["tenant"] as? String == tenant
                else { continue }
                count += 1
                bytes += (object["length"] as? Int) ?? 0
            }
            return (count, bytes)
        }) ?? (0, 0)
    }

    public func deleteResumable(id: String) async {
        guard Self.isUploadID(id) else { return }
        try? await io.remove(uploadPath(id))
        try? await io.remove(uploadPath(id) + ".json")
    }

    /// Uploads not touched for `olderThan` (expired; or a manifest whose data file is gone).
    public func expireResumable(olderThan: Duration) async -> Int {
        let directory = uploadsDirectory
        let cutoff = Date().addingTimeInterval(-Double(olderThan.components.seconds))
        return (try? await NIOThreadPool.singleton.runIfActive {
            let manager = FileManager.default
            var removed = 0
            for name in (try? manager.contentsOfDirectory(atPath: directory)) ?? [] {
                let path = "\(directory)/\(name)"
                guard let modified = (try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date, modified < cutoff else { continue }
                try? manager.removeItem(atPath: path)
                removed += 1
            }
            return removed
        }) ?? 0
    }
}
