import Foundation
import Runtime
import Tenancy

/// SQLite-hosted sources: uploads provisioned on an embedded node, and `kind: sqlite`.
extension SourceRegistrar {
    /// `kind: sqlite`: with `path`, an existing SQLite file inside the node's data directory,
    /// introspected; without, an empty database of the tenant's own whose tables come from
    /// uploads (re-upload a document to the source to create them).
    public func registerSQLite(tenant: String, name: String, fields: JSONObject, requestID: String?) async throws -> SourceRegistration {
        guard let files = catalog.sqliteFiles else { throw RegistrationError.sqliteNeedsEmbeddedNode }
        let request = RegistrationFields(fields)
        try await refuseTaken(name, tenant: tenant)
        var config: JSONObject
        let model: SchemaModel
        if let given = try request.string("path") {
            guard let relative = files.existingFile(given) else {
                throw RegistrationError.invalidField("path", "must name an existing file inside the node's data directory")
            }
            do {
                model = try await SourceCatalog.introspectSQLite(files.absolute(relative), logger: logger)
            } catch {
                throw RegistrationError.sqliteRefused(error)
            }
            config = ["sqliteFile": .string(relative), "hosted": false]
        } else {
            let file = SQLiteFiles.hostedPath(tenant: tenant, source: name)
            try await create(file, statements: [], files: files, model: SchemaModel())
            config = ["sqliteFile": .string(file), "hosted": true]
            model = SchemaModel()
        }
        do {
            try await catalog.registerStored(tenant: tenant, name: name, kind: SourceKind.sqlite.rawValue, config: config, model: model, requestID: requestID)
        } catch {
            if config["hosted"] == true, let file = config["sqliteFile"]?.stringValue { files.remove(file) }
            if case ControlPlaneError.duplicate = error { throw RegistrationError.sourceExists(name) }
            throw error
        }
        var summary = SourceRegistration(name: name, kind: .sqlite, model: model, schemas: [])
        summary.changeCapture = Self.noChangeLog
        return summary
    }

    /// An upload with `provision: true` on a node without a hosted PostgreSQL: the model's tables
    /// in a SQLite file of the source's own.
    func provisionSQLite(
        tenant: String, name: String, format: UploadedSchema.Format, parsed: UploadedSchema.Parsed, files: SQLiteFiles, requestID: String?
    ) async throws -> SourceRegistration {
        let model = Self.hostable(parsed.model)
        let plan: (statements: [String], warnings: [String])
        do {
            plan = try SQLiteProvisioner().statements(for: parsed.model)
        } catch {
            throw RegistrationError.notProvisionable(error)
        }
        let file = SQLiteFiles.hostedPath(tenant: tenant, source: name)
        try await create(file, statements: plan.statements, files: files, model: model)
        let warnings = parsed.warnings + plan.warnings
        let config: JSONObject = [
            "format": .string(format.rawValue), "warnings": .array(warnings.map(JSONValue.string)), "provisioned": true, "served": true,
            "hosted": true, "sqliteFile": .string(file),
        ]
        do {
            try await catalog.registerStored(tenant: tenant, name: name, kind: SourceKind.schema.rawValue, config: config, model: model, requestID: requestID)
        } catch {
            files.remove(file)
            if case ControlPlaneError.duplicate = error { throw RegistrationError.sourceExists(name) }
            throw error
        }
        var summary = SourceRegistration(name: name, kind: .schema, model: model, schemas: [])
        summary.format = format
        summary.provisioned = true
        summary.warnings = warnings
        summary.changeCapture = Self.noChangeLog
        return summary
    }

    /// A re-upload to a SQLite-hosted source: migrated in one transaction with PostgreSQL's
    /// rules (destructive steps only with `allowDestructive: true`).
    func migrateSQLite(_ record: SourceRecord, parsed: UploadedSchema.Parsed, fields: JSONObject, requestID: String?) async throws -> SourceRegistration {
        guard let files = catalog.sqliteFiles, let file = record.sqliteFile else { throw RegistrationError.sqliteNeedsEmbeddedNode }
        let wanted = Self.hostable(parsed.model)
        let migration: SchemaMigration
        do {
            migration = try SQLiteProvisioner().migration(from: SourceCatalog.model(of: record), to: parsed.model)
        } catch {
            throw RegistrationError.notMigratable(error)
        }
        if !migration.destructive.isEmpty, try RegistrationFields(fields).bool("allowDestructive") != true {
            throw RegistrationError.destructiveMigration(migration.destructive)
        }
        if !migration.statements.isEmpty {
            let source = SQLiteSource(name: record.name, kind: .schema, path: files.absolute(file), model: wanted, logger: logger)
            do {
                try await source.apply(migration.statements)
                await source.close()
            } catch {
                await source.close()
                throw RegistrationError.migrationRefused(error)
            }
        }
        let audit = AuditEntry(
            at: Date(), actor: "admin", action: "source.reupload", tenant: record.tenant, requestID: requestID, detail: ["name": .string(record.name)])
        _ = try await catalog.store.updateSourceModel(tenant: record.tenant, name: record.name, model: try await SourceCatalog.encoded(wanted), audit: audit)
        var summary = SourceRegistration(name: record.name, kind: record.sourceKind ?? .schema, model: wanted, schemas: [])
        summary.changes = migration.changes.isEmpty ? ["no change"] : migration.changes
        summary.warnings = parsed.warnings + migration.warnings
        return summary
    }

    /// Makes a fresh file (a stale one of a source deleted while the node was down goes first)
    /// and runs the statements in it; nothing is left behind when they fail.
    private func create(_ file: String, statements: [String], files: SQLiteFiles, model: SchemaModel) async throws {
        files.remove(file)
        do {
            try files.prepare(file)
        } catch {
            throw RegistrationError.sqliteRefused(error)
        }
        let source = SQLiteSource(name: "new", kind: .sqlite, path: files.absolute(file), model: model, logger: logger)
        do {
            try await source.apply(statements)
            await source.close()
        } catch {
            await source.close()
            files.remove(file)
            throw RegistrationError.sqliteRefused(error)
        }
    }

    /// What a SQLite-hosted source serves of a model: its tables and the relations between them
    /// (views and functions run uploaded SQL, which is never executed here).
    static func hostable(_ model: SchemaModel) -> SchemaModel {
        let tables = model.entities.filter { $0.kind == .table }
        let names = Set(tables.map(\.name))
        let relations = model.relations.filter { relation in
            names.contains(relation.from.name) && names.contains(relation.to.name) && (relation.junction.map { names.contains($0.entity.name) } ?? true)
        }
        return SchemaModel(entities: tables, relations: relations, operations: [], enums: model.enums)
    }

    static let noChangeLog = PostgresChangeFeed.Capability.unavailable(
        "SQLite keeps no change log: writes through the REST API are published to realtime subscribers; writes made to the file by other programs are not")
}
