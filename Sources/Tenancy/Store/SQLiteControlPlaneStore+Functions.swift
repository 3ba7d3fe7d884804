import Foundation
import Runtime
import SQLiteNIO

/// Functions and their versions in the embedded control plane.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date) -> SQLiteData { .integer(Int(StoreCoding.milliseconds(date))) }

    public func deployFunction(
        tenant: String, name: String, module: [UInt8], settings: FunctionSettings, sha256: String, sealedSecrets: String?, maxFunctions: Int,
        keep: Int, now: Date
    ) async throws -> (function: FunctionRecord, version: FunctionVersionRecord, created: Bool) {
        try await transaction { db in
            let existing = try db.rows("SELECT active_version FROM functions WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]).first
            let created = existing == nil
            if created {
                let count = try db.rows("SELECT count(*) AS n FROM functions WHERE tenant = ?", [.text(tenant)]).first?.column("n")?.integer ?? 0
                guard count < maxFunctions else { throw ControlPlaneError.limitReached("functions (\(maxFunctions))") }
                _ = try db.rows(
                    "INSERT INTO functions (tenant, name, active_version, sealed_secrets, created_at_ms, updated_at_ms) VALUES (?, ?, 0, ?, ?, ?)",
                    [.text(tenant), .text(name), .text(sealedSecrets ?? ""), Self.ms(now), Self.ms(now)])
            }
            let latest = try db.rows(
                "SELECT coalesce(max(version), 0) AS v FROM function_versions WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]
            ).first?.column("v")?.integer ?? 0
            let version = latest + 1
            _ = try db.rows(
                "INSERT INTO function_versions (tenant, name, version, module, settings, sha256, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(tenant), .text(name), .integer(version), .blob(ByteBuffer(bytes: module)), .text(StoreCoding.encodeDocument(settings)),
                 .text(sha256), Self.ms(now)])
            _ = try db.rows(
                "DELETE FROM function_versions WHERE tenant = ? AND name = ? AND version <= ?", [.text(tenant), .text(name), .integer(version - keep)])
            var update = "UPDATE functions SET active_version = ?, updated_at_ms = ?"
            var binds: [SQLiteData] = [.integer(version), Self.ms(now)]
            if let sealedSecrets {
                update += ", sealed_secrets = ?"
                binds.append(.text(sealedSecrets))
            }
            _ = try db.rows(update + " WHERE tenant = ? AND name = ?", binds + [.text(tenant), .text(name)])
            guard let function = try db.rows("SELECT * FROM functions WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]).first else {
                throw ControlPlaneError.corrupt("function row")
            }
            return (
                try Self.function(from: function),
                FunctionVersionRecord(tenant: tenant, name: name, version: version, module: module, settings: settings, sha256: sha256, createdAt: now),
                created
            )
        }
    }

    public func functions(tenant: String) async throws -> [FunctionRecord] {
        try await read("SELECT * FROM functions WHERE tenant = ? ORDER BY name", [.text(tenant)]).map(Self.function(from:))
    }

    public func function(tenant: String, name: String) async throws -> FunctionRecord? {
        try await read("SELECT * FROM functions WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]).first.map(Self.function(from:))
    }

    public func functionVersions(tenant: String, name: String, withModules: Bool) async throws -> [FunctionVersionRecord] {
        let module = withModules ? "module" : "x'' AS module"
        return try await read(
            "SELECT tenant, name, version, \(module), settings, sha256, created_at_ms FROM function_versions WHERE tenant = ? AND name = ? ORDER BY version DESC",
            [.text(tenant), .text(name)]
        ).map(Self.version(from:))
    }

    public func functionVersion(tenant: String, name: String, version: Int) async throws -> FunctionVersionRecord? {
        try await read(
            "SELECT * FROM function_versions WHERE tenant = ? AND name = ? AND version = ?", [.text(tenant), .text(name), .integer(version)]
        ).first.map(Self.version(from:))
    }

    public func activateFunctionVersion(tenant: String, name: String, version: Int, now: Date) async throws -> Bool {
        try await transaction { db in
            !(try db.rows(
                """
                UPDATE functions SET active_version = ?, updated_at_ms = ? WHERE tenant = ? AND name = ?
                  AND EXISTS (SELECT 1 FROM function_versions WHERE tenant = ? AND name = ? AND version = ?) RETURNING 1
                """,
                [.integer(version), Self.ms(now), .text(tenant), .text(name), .text(tenant), .text(name), .integer(version)])).isEmpty
        }
    }

    public func deleteFunction(tenant: String, name: String) async throws -> Bool {
        try await transaction { db in
            _ = try db.rows("DELETE FROM function_versions WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)])
            return !(try db.rows("DELETE FROM functions WHERE tenant = ? AND name = ? RETURNING 1", [.text(tenant), .text(name)])).isEmpty
        }
    }

    private static func function(from row: SQLiteResultRow) throws -> FunctionRecord {
        guard let tenant = row.column("tenant")?.string, let name = row.column("name")?.string else { throw ControlPlaneError.corrupt("function row") }
        return FunctionRecord(
            tenant: tenant, name: name, activeVersion: row.column("active_version")?.integer ?? 0,
            sealedSecrets: row.column("sealed_secrets")?.string ?? "",
            createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)),
            updatedAt: StoreCoding.date(milliseconds: Int64(row.column("updated_at_ms")?.integer ?? 0)))
    }

    private static func version(from row: SQLiteResultRow) throws -> FunctionVersionRecord {
        guard let tenant = row.column("tenant")?.string, let name = row.column("name")?.string, let settings = row.column("settings")?.string else {
            throw ControlPlaneError.corrupt("function version row")
        }
        var module: [UInt8] = []
        if case .blob(let buffer)? = row.column("module") { module = Array(buffer.readableBytesView) }
        return FunctionVersionRecord(
            tenant: tenant, name: name, version: row.column("version")?.integer ?? 0, module: module,
            settings: try StoreCoding.decodeDocument(FunctionSettings.self, settings), sha256: row.column("sha256")?.string ?? "",
            createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)))
    }
}
