import Foundation

/// Where SQLite-hosted sources live: `tenants/{tenant}/{source}.sqlite` under the node's data
/// directory, one directory per tenant (isolation by file; deleting a tenant deletes its
/// directory). Stored records keep paths relative to the data directory, so a data directory
/// can be moved whole.
public struct SQLiteFiles: Sendable {
    public let dataDirectory: String

    public init(dataDirectory: String) {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
    }

    /// The file a hosted source of `tenant` gets (tenant slugs and source names are checked
    /// to be path-safe before they get here).
    public static func hostedPath(tenant: String, source: String) -> String {
        "tenants/\(tenant)/\(source).sqlite"
    }

    public func absolute(_ relative: String) -> String {
        dataDirectory + "/" + relative
    }

    /// Makes the tenant's directory for a new file.
    public func prepare(_ relative: String) throws {
        let directory = URL(fileURLWithPath: absolute(relative)).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// A path a tenant gave (`kind: sqlite`, `path`), relative to the data directory or absolute,
    /// as a path relative to the data directory — or nil when it leads outside it (`..`, a
    /// symbolic link out) or to no regular file.
    public func existingFile(_ given: String) -> String? {
        guard !given.isEmpty, !given.contains("\u{0}") else { return nil }
        let candidate = given.hasPrefix("/") ? URL(fileURLWithPath: given) : URL(fileURLWithPath: absolute(given))
        let resolved = candidate.standardizedFileURL.resolvingSymlinksInPath().path
        let root = URL(fileURLWithPath: dataDirectory).resolvingSymlinksInPath().path
        guard resolved.hasPrefix(root + "/") else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        return String(resolved.dropFirst(root.count + 1))
    }

    /// Deletes a source's file with its WAL and shared-memory files.
    public func remove(_ relative: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: absolute(relative) + suffix) }
    }

    /// Deletes a deleted tenant's directory once its hosted files are gone; files of the tenant's
    /// own that it registered by path are never deleted, so a directory holding any stays.
    public func removeTenantDirectory(_ slug: String) {
        let directory = absolute("tenants/\(slug)")
        guard let left = try? FileManager.default.contentsOfDirectory(atPath: directory), left.isEmpty else { return }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
