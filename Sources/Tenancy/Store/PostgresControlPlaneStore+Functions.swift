import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Functions and their versions in the cluster's control plane.
extension PostgresControlPlaneStore {
    public func deployFunction(
        tenant: String, name: String, module: [UInt8], settings: FunctionSettings, sha256: String, sealedSecrets: String?, maxFunctions: Int,
        keep: Int, now: Date
    ) async throws -> (function: FunctionRecord, version: FunctionVersionRecord, created: Bool) {
        do {
            return try await deployFunctionTransaction(
                tenant: tenant, name: name, module: module, settings: settings, sha256: sha256, sealedSecrets: sealedSecrets, maxFunctions: maxFunctions,
                keep: keep, now: now)
        } catch let error as PostgresTransactionError {
            // Our own refusals (the function limit) come out as themselves.
            throw error.closureError ?? error
        }
    }

    private func deployFunctionTransaction(
        tenant: String, name: String, module: [UInt8], settings: FunctionSettings, sha256: String, sealedSecrets: String?, maxFunctions: Int,
        keep: Int, now: Date
    ) async throws -> (function: FunctionRecord, version: FunctionVersionRecord, created: Bool) {
        try await client.withTransaction(logger: logger) { db in
            // One deploy of a tenant's functions at a time: the count and the next version are read
            // and written in the same transaction.
            try await db.query("SELECT pg_advisory_xact_lock(hashtext(\(tenant)))", logger: logger)
            var created = true
            for try await _ in try await db.query(
                "SELECT 1 FROM minibaas.functions WHERE tenant = \(tenant) AND name = \(name)", logger: logger) { created = false }
            if created {
                var count = 0
                for try await n in try await db.query("SELECT count(*)::int FROM minibaas.functions WHERE tenant = \(tenant)", logger: logger).decode(Int.self) {
                    count = n
                }
                guard count < maxFunctions else { throw ControlPlaneError.limitReached("functions (\(maxFunctions))") }
                try await db.query(
                    """
                    INSERT INTO minibaas.functions (tenant, name, active_version, sealed_secrets, created_at, updated_at)
                    VALUES (\(tenant), \(name), 0, \(sealedSecrets ?? ""), \(now), \(now))
                    """, logger: logger)
            }
            var latest = 0
            for try await v in try await db.query(
                "SELECT coalesce(max(version), 0)::int FROM minibaas.function_versions WHERE tenant = \(tenant) AND name = \(name)", logger: logger
            ).decode(Int.self) { latest = v }
            let version = latest + 1
            try await db.query(
                """
                INSERT INTO minibaas.function_versions (tenant, name, version, module, settings, sha256, created_at)
                VALUES (\(tenant), \(name), \(version), \(ByteBuffer(bytes: module)), \(StoreCoding.encodeDocument(settings))::jsonb, \(sha256), \(now))
                """, logger: logger)
            try await db.query(
                "DELETE FROM minibaas.function_versions WHERE tenant = \(tenant) AND name = \(name) AND version <= \(version - keep)", logger: logger)
            if let sealedSecrets {
                try await db.query(
                    """
                    UPDATE minibaas.functions SET active_version = \(version), updated_at = \(now), sealed_secrets = \(sealedSecrets)
                    WHERE tenant = \(tenant) AND name = \(name)
                    """, logger: logger)
            } else {
                try await db.query(
                    "UPDATE minibaas.functions SET active_version = \(version), updated_at = \(now) WHERE tenant = \(tenant) AND name = \(name)",
                    logger: logger)
            }
            let rows = try await db.query(
                "SELECT \(unescaped: Self.functionColumns) FROM minibaas.functions WHERE tenant = \(tenant) AND name = \(name)", logger: logger)
            guard let function = try await Self.functions(rows).first else { throw ControlPlaneError.corrupt("function row") }
            return (
                function,
                FunctionVersionRecord(tenant: tenant, name: name, version: version, module: module, settings: settings, sha256: sha256, createdAt: now),
                created
            )
        }
    }

    public func functions(tenant: String) async throws -> [FunctionRecord] {
        try await Self.functions(client.query(
            "SELECT \(unescaped: Self.functionColumns) FROM minibaas.functions WHERE tenant = \(tenant) ORDER BY name", logger: logger))
    }

    public func function(tenant: String, name: String) async throws -> FunctionRecord? {
        try await Self.functions(client.query(
            "SELECT \(unescaped: Self.functionColumns) FROM minibaas.functions WHERE tenant = \(tenant) AND name = \(name)", logger: logger)).first
    }

    public func functionVersions(tenant: String, name: String, withModules: Bool) async throws -> [FunctionVersionRecord] {
        try await Self.versions(client.query(
            """
            SELECT tenant, name, version, \(unescaped: withModules ? "module" : "''::bytea"), settings::text, sha256, created_at
            FROM minibaas.function_versions WHERE tenant = \(tenant) AND name = \(name) ORDER BY version DESC
            """, logger: logger))
    }

    public func functionVersion(tenant: String, name: String, version: Int) async throws -> FunctionVersionRecord? {
        try await Self.versions(client.query(
            """
            SELECT tenant, name, version, module, settings::text, sha256, created_at
            FROM minibaas.function_versions WHERE tenant = \(tenant) AND name = \(name) AND version = \(version)
            """, logger: logger)).first
    }

    public func activateFunctionVersion(tenant: String, name: String, version: Int, now: Date) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            UPDATE minibaas.functions SET active_version = \(version), updated_at = \(now) WHERE tenant = \(tenant) AND name = \(name)
              AND EXISTS (SELECT 1 FROM minibaas.function_versions WHERE tenant = \(tenant) AND name = \(name) AND version = \(version))
            RETURNING 1
            """, logger: logger))
    }

    public func deleteFunction(tenant: String, name: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.functions WHERE tenant = \(tenant) AND name = \(name) RETURNING 1", logger: logger))
    }

    private static let functionColumns = "tenant, name, active_version, sealed_secrets, created_at, updated_at"

    private static func functions(_ rows: PostgresRowSequence) async throws -> [FunctionRecord] {
        var found: [FunctionRecord] = []
        for try await row in rows.decode((String, String, Int, String, Date, Date).self) {
            found.append(FunctionRecord(tenant: row.0, name: row.1, activeVersion: row.2, sealedSecrets: row.3, createdAt: row.4, updatedAt: row.5))
        }
        return found
    }

    private static func versions(_ rows: PostgresRowSequence) async throws -> [FunctionVersionRecord] {
        var found: [FunctionVersionRecord] = []
        for try await row in rows.decode((String, String, Int, ByteBuffer, String, String, Date).self) {
            found.append(FunctionVersionRecord(
                tenant: row.0, name: row.1, version: row.2, module: Array(row.3.readableBytesView),
                settings: try StoreCoding.decodeDocument(FunctionSettings.self, row.4), sha256: row.5, createdAt: row.6))
        }
        return found
    }
}
