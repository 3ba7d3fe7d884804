import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime
import Tenancy

/// Registers a tenant's sources, one method per kind: checks what the request gives, reaches the
/// source (connects and introspects a database, reads an upstream API, provisions an uploaded
/// model) and only then stores it through the catalog, so a source that cannot be served is never
/// half-written. Refusals are `RegistrationError`s, each with the code the admin API answers with.
///
/// Arguments the admin API reads before anything is checked come typed; the request's other
/// fields (`fields`) are read where they always were, so a request with several mistakes is
/// refused for the same one as before.
public struct SourceRegistrar: Sendable {
    public let catalog: SourceCatalog
    /// Where `provision: true` creates an uploaded model's tables; nil: provisioning is refused.
    public let hostedDatabaseURL: PostgresURL?
    /// The request's logger: provisioning and the change-capture probe log under it.
    public let logger: Logger

    public init(catalog: SourceCatalog, hostedDatabaseURL: PostgresURL?, logger: Logger) {
        self.catalog = catalog
        self.hostedDatabaseURL = hostedDatabaseURL
        self.logger = logger
    }

    // MARK: - Databases

    /// `kind: postgres`: a database at `url`, connected to and introspected. `fields`: its pool
    /// settings (`schemas`, `maxConnections`, `acquireTimeoutMs`, `preparedStatements`).
    public func registerPostgres(tenant: String, name: String, url: String, fields: JSONObject, requestID: String?) async throws -> SourceRegistration {
        let registration = try RegistrationFields(fields).postgres(name: name, kind: .postgres, url: url, urlField: "url")
        return try await registerDatabase(tenant: tenant, registration, kind: .postgres, requestID: requestID)
    }

    /// `kind: supabase`. With `databaseURL` (`dbUrl`): the project's database, as a postgres source
    /// that also keeps the project's `url` and its `serviceKey` (sealed). Without: the project
    /// reached through its REST endpoint with its service key, the model read from the project's
    /// `/rest/v1/` description. `fields`: `url`, `serviceKey` and the pool settings.
    public func registerSupabase(
        tenant: String, name: String, databaseURL: String?, fields: JSONObject, requestID: String?
    ) async throws -> SourceRegistration {
        let request = RegistrationFields(fields)
        guard let databaseURL else { return try await registerSupabaseProxy(tenant: tenant, name: name, request: request, requestID: requestID) }
        var registration = try request.postgres(name: name, kind: .supabase, url: databaseURL, urlField: "dbUrl")
        let projectURL = try request.requiredString("url")
        guard let url = URL(string: projectURL), url.scheme == "https" || url.scheme == "http", url.host != nil else {
            throw RegistrationError.invalidField("url", "must be the project's http(s) URL")
        }
        registration.extra["projectUrl"] = .string(projectURL)
        if let key = try request.string("serviceKey") { registration.extraSecrets["serviceKey"] = .string(key) }
        return try await registerDatabase(tenant: tenant, registration, kind: .supabase, requestID: requestID)
    }

    /// Whether realtime can follow the source's own changes, added to the answer of a database
    /// registered by its URL; other registrations come back as they are. Separate from
    /// registering because it connects again and may wait seconds: the admin API tells the tenant
    /// of its new source first.
    public func probeChangeCapture(_ registration: SourceRegistration) async -> SourceRegistration {
        guard let url = registration.changeCaptureURL else { return registration }
        var registration = registration
        registration.changeCapture = await PostgresChangeFeed.probe(url: url, tryPlugin: true, logger: logger)
        return registration
    }

    private func registerDatabase(
        tenant: String, _ registration: SourceCatalog.PostgresRegistration, kind: SourceKind, requestID: String?
    ) async throws -> SourceRegistration {
        try await refuseTaken(registration.name, tenant: tenant)
        let model: SchemaModel
        do {
            model = try await catalog.register(tenant: tenant, registration, requestID: requestID)
        } catch ControlPlaneError.duplicate {
            throw RegistrationError.sourceExists(registration.name)
        } catch {
            throw RegistrationError.connection(error, url: registration.url)
        }
        var summary = SourceRegistration(name: registration.name, kind: kind, model: model, schemas: registration.schemas)
        summary.changeCaptureURL = registration.url
        return summary
    }

    private func registerSupabaseProxy(tenant: String, name: String, request: RegistrationFields, requestID: String?) async throws -> SourceRegistration {
        let projectURL = try request.requiredString("url")
        guard let url = URL(string: projectURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw RegistrationError.invalidField("url", "must be the project's http(s) URL")
        }
        let serviceKey = try request.requiredString("serviceKey")
        guard !serviceKey.isEmpty, !serviceKey.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw RegistrationError.invalidField("serviceKey", "expected the project's service-role key")
        }
        let model: SchemaModel
        do {
            model = try await RestProxySource.describe(projectURL: projectURL, serviceKey: serviceKey)
        } catch {
            throw RegistrationError.projectNotDescribed(error)
        }
        try await refuseTaken(name, tenant: tenant)
        do {
            try await catalog.registerStored(
                tenant: tenant, name: name, kind: SourceKind.supabase.rawValue, config: ["projectUrl": .string(projectURL), "proxy": true],
                secrets: ["serviceKey": .string(serviceKey)], model: model, requestID: requestID)
        } catch ControlPlaneError.duplicate {
            throw RegistrationError.sourceExists(name)
        }
        var summary = SourceRegistration(name: name, kind: .supabase, model: model, schemas: [])
        summary.proxy = true
        return summary
    }

    // MARK: - Uploaded schemas

    /// An uploaded document's `format`, by name.
    public static func uploadFormat(_ name: String) throws -> UploadedSchema.Format {
        guard let format = UploadedSchema.Format(rawValue: name) else {
            throw RegistrationError.invalidField("format", "must be one of \(UploadedSchema.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return format
    }

    /// `kind: schema`: an uploaded `document`, served over the tenant's own database (`url` and
    /// the pool settings in `fields`), provisioned into the hosted database (`provision`), or
    /// kept as a model only.
    public func registerUpload(
        tenant: String, name: String, format: UploadedSchema.Format, document: String, provision: Bool, fields: JSONObject, requestID: String?
    ) async throws -> SourceRegistration {
        let request = RegistrationFields(fields)
        if provision && fields["url"] != nil {
            throw RegistrationError.invalidField("provision", "either serve the model over your database (url) or provision it, not both")
        }
        let parsed = try await Self.parse(document, format: format)
        guard !parsed.model.entities.isEmpty else { throw RegistrationError.noTables(format) }
        try await refuseTaken(name, tenant: tenant)
        var warnings = parsed.warnings
        var config: JSONObject = ["format": .string(format.rawValue), "warnings": .array(warnings.map(JSONValue.string))]
        let model: SchemaModel
        var schemas = ["public"]
        if provision, hostedDatabaseURL == nil, let files = catalog.sqliteFiles {
            return try await provisionSQLite(tenant: tenant, name: name, format: format, parsed: parsed, files: files, requestID: requestID)
        }
        if provision {
            guard let hosted = hostedDatabaseURL else { throw RegistrationError.noHostedDatabase }
            guard let schema = SchemaProvisioner.schemaName(tenant: tenant, source: name) else {
                throw RegistrationError.invalidField("name", "tenant and source names together must fit PostgreSQL's 63-byte schema names")
            }
            let provisioner = SchemaProvisioner(url: hosted, schema: schema, logger: logger)
            let plan: (statements: [String], warnings: [String])
            do {
                plan = try provisioner.statements(for: parsed.model)
            } catch {
                throw RegistrationError.notProvisionable(error)
            }
            // Read before the tables are made: refused after, it would leave them behind.
            let preparedStatements = try request.preparedStatements()
            do {
                try await provisioner.apply(plan.statements)
            } catch where PostgresControlPlaneStore.sqlState(of: error) == "42P06" {
                throw RegistrationError.schemaTaken(schema)
            } catch {
                throw RegistrationError.connection(error, url: hosted)
            }
            warnings = parsed.warnings + plan.warnings
            config["provisioned"] = true
            config["served"] = true
            config["warnings"] = .array(warnings.map(JSONValue.string))
            var registration = SourceCatalog.PostgresRegistration(
                name: name, kind: SourceKind.schema.rawValue, url: hosted, schemas: [schema], maxConnections: 10)
            registration.extra = config
            registration.extra["preparedStatements"] = preparedStatements
            schemas = [schema]
            do {
                model = try await catalog.register(tenant: tenant, registration, requestID: requestID)
            } catch {
                // Nothing is half-made: the tables go again when the source cannot be recorded.
                try? await provisioner.drop()
                if case ControlPlaneError.duplicate = error { throw RegistrationError.sourceExists(name) }
                throw RegistrationError.connection(error, url: hosted)
            }
        } else if fields["url"] != nil {
            var registration = try request.postgres(name: name, kind: .schema, url: try request.requiredString("url"), urlField: "url")
            config["served"] = true
            for (key, value) in config { registration.extra[key] = value }
            registration.uploadedModel = parsed.model
            schemas = registration.schemas
            do {
                model = try await catalog.register(tenant: tenant, registration, requestID: requestID)
            } catch ControlPlaneError.duplicate {
                throw RegistrationError.sourceExists(name)
            } catch {
                throw RegistrationError.connection(error, url: registration.url)
            }
        } else {
            do {
                try await catalog.registerStored(
                    tenant: tenant, name: name, kind: SourceKind.schema.rawValue, config: config, model: parsed.model, requestID: requestID)
            } catch ControlPlaneError.duplicate {
                throw RegistrationError.sourceExists(name)
            }
            model = parsed.model
        }
        var summary = SourceRegistration(name: name, kind: .schema, model: model, schemas: schemas)
        summary.format = format
        summary.provisioned = provision
        summary.warnings = warnings
        return summary
    }

    /// The uploaded schema `name` of `tenant`, which a new document replaces; other kinds are
    /// refreshed instead.
    public func uploadedSource(tenant: String, name: String) async throws -> SourceRecord {
        guard let record = try await catalog.store.sources(tenant).first(where: { $0.name == name }) else {
            throw RegistrationError.sourceNotFound(name)
        }
        guard record.kind == SourceKind.schema.rawValue || (record.sqliteFile != nil && record.config["hosted"] == true) else {
            throw RegistrationError.notUploaded
        }
        return record
    }

    /// A new version (`format`, `document`) of an uploaded schema. A provisioned one is migrated in
    /// place (additive steps always, destructive ones only when `fields` has `allowDestructive:
    /// true`, all in one transaction); one served over the tenant's database, or kept as a model,
    /// takes the new model as it is.
    public func reupload(
        _ record: SourceRecord, format: UploadedSchema.Format, document: String, fields: JSONObject, requestID: String?
    ) async throws -> SourceRegistration {
        let parsed = try await Self.parse(document, format: format)
        let changes: [String]
        let model: SchemaModel
        if record.sqliteFile != nil {
            return try await migrateSQLite(record, parsed: parsed, fields: fields, requestID: requestID)
        } else if record.config["provisioned"] == true {
            let (url, schemas, _) = try catalog.open(record)
            let provisioner = SchemaProvisioner(url: url, schema: schemas.first ?? "", logger: logger)
            let migration: SchemaMigration
            do {
                migration = try SchemaMigration.plan(from: SourceCatalog.model(of: record), to: parsed.model, provisioner: provisioner)
            } catch {
                throw RegistrationError.notMigratable(error)
            }
            if !migration.destructive.isEmpty, try RegistrationFields(fields).bool("allowDestructive") != true {
                throw RegistrationError.destructiveMigration(migration.destructive)
            }
            do {
                if !migration.statements.isEmpty { try await provisioner.apply(migration.statements) }
            } catch {
                throw RegistrationError.migrationRefused(error)
            }
            do {
                guard let refreshed = try await catalog.refresh(tenant: record.tenant, name: record.name, requestID: requestID) else {
                    throw RegistrationError.sourceNotFound(record.name)
                }
                model = refreshed
            } catch let error as RegistrationError {
                throw error
            } catch {
                throw RegistrationError.connection(error, url: url)
            }
            changes = migration.changes
        } else {
            model = parsed.model
            let audit = AuditEntry(
                at: Date(), actor: "admin", action: "source.reupload", tenant: record.tenant, requestID: requestID, detail: ["name": .string(record.name)])
            _ = try await catalog.store.updateSourceModel(
                tenant: record.tenant, name: record.name, model: try await SourceCatalog.encoded(model), audit: audit)
            changes = ["model replaced"]
        }
        var summary = SourceRegistration(
            name: record.name, kind: .schema, model: model, schemas: record.config["schemas"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        summary.changes = changes
        summary.warnings = parsed.warnings
        return summary
    }

    /// An uploaded document, parsed off the event loops (up to the body limit of YAML or SQL).
    static func parse(_ document: String, format: UploadedSchema.Format) async throws -> UploadedSchema.Parsed {
        do {
            return try await offloaded { () throws -> UploadedSchema.Parsed in try UploadedSchema.parse(document, format: format) }
        } catch let error as UploadedSchema.Failure {
            throw RegistrationError.unreadable("the \(format.rawValue) document", error)
        }
    }

    // MARK: - Upstream APIs

    /// `kind: openapi`: an existing REST API described by OpenAPI 3.x or Swagger 2.0 (JSON) —
    /// `document`, or `specUrl` to fetch it from — proxied at `baseUrl` (by default the
    /// description's first server) with the tenant's credentials for it (`headers`, sealed).
    public func registerOpenAPI(tenant: String, name: String, fields: JSONObject, requestID: String?) async throws -> SourceRegistration {
        let request = RegistrationFields(fields)
        let text: String
        if let document = fields["document"], document != .null {
            text = document.stringValue ?? document.jsonString
        } else if let specURL = try request.string("specUrl") {
            guard let url = URL(string: specURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw RegistrationError.invalidField("specUrl", "expected an http(s) URL")
            }
            text = try await Self.fetchSpec(specURL)
        } else {
            throw RegistrationError.invalidField("document", "give the OpenAPI document, or specUrl to fetch it from")
        }
        let spec: UpstreamSpec
        do {
            spec = try UpstreamSpec.parse(text)
        } catch {
            throw RegistrationError.unreadable("the API description", error)
        }
        var baseURL = try request.string("baseUrl")
        if baseURL == nil, let server = spec.document["servers"]?.arrayValue?.first?["url"]?.stringValue, server.hasPrefix("http") { baseURL = server }
        guard let base = baseURL, let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw RegistrationError.invalidField("baseUrl", "expected the upstream's http(s) base URL")
        }
        let headers = try request.headers()
        var model = (try? UploadedSchema.parse(text, format: spec.isSwagger ? .jsonschema : .openapi).model) ?? SchemaModel()
        model.operations = spec.operations
        try await refuseTaken(name, tenant: tenant)
        let config: JSONObject = ["baseUrl": .string(base), "spec": spec.document, "headerNames": .array(headers.keys.map(JSONValue.string))]
        do {
            try await catalog.registerStored(
                tenant: tenant, name: name, kind: SourceKind.openapi.rawValue, config: config, secrets: ["headers": .object(headers)], model: model,
                requestID: requestID)
        } catch ControlPlaneError.duplicate {
            throw RegistrationError.sourceExists(name)
        }
        var summary = SourceRegistration(name: name, kind: .openapi, model: model, schemas: [])
        summary.baseURL = base
        summary.operations = spec.routes.map { "\($0.method) \($0.path) (\($0.operationID))" }
        return summary
    }

    /// `kind: graphql`: an existing GraphQL API at `url`, introspected once, reached with the
    /// tenant's credentials for it (`headers` in `fields`, sealed).
    public func registerGraphQL(tenant: String, name: String, url: String, fields: JSONObject, requestID: String?) async throws -> SourceRegistration {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw RegistrationError.invalidField("url", "expected the GraphQL endpoint's http(s) URL")
        }
        let headers = try RegistrationFields(fields).headers()
        let model: SchemaModel
        do {
            model = try await GraphQLUpstream.introspect(url: url, headers: headers.compactMap { name, value in value.stringValue.map { (name, $0) } })
        } catch {
            throw RegistrationError.graphQLNotIntrospected(error)
        }
        try await refuseTaken(name, tenant: tenant)
        do {
            try await catalog.registerStored(
                tenant: tenant, name: name, kind: SourceKind.graphql.rawValue,
                config: ["url": .string(url), "headerNames": .array(headers.keys.map(JSONValue.string))],
                secrets: ["headers": .object(headers)], model: model, requestID: requestID)
        } catch ControlPlaneError.duplicate {
            throw RegistrationError.sourceExists(name)
        }
        var summary = SourceRegistration(name: name, kind: .graphql, model: model, schemas: [])
        summary.url = url
        return summary
    }

    static func fetchSpec(_ url: String) async throws -> String {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            guard response.status.code == 200 else {
                throw RegistrationError.specNotFetched("fetching the spec answered HTTP \(response.status.code)")
            }
            let body = try await response.body.collect(upTo: UploadedSchema.maxDocumentBytes)
            return String(buffer: body)
        } catch let error as RegistrationError {
            throw error
        } catch {
            throw RegistrationError.specNotFetched("cannot fetch the spec from \(url): \(error)")
        }
    }

    // MARK: - Names

    /// A name already taken is refused before anything is provisioned or stored; the store
    /// refuses it again should another registration get there in between.
    func refuseTaken(_ name: String, tenant: String) async throws {
        if try await catalog.store.sources(tenant).contains(where: { $0.name == name }) { throw RegistrationError.sourceExists(name) }
    }
}
