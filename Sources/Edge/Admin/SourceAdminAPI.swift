import AsyncHTTPClient
import Connectors
import Foundation
import Hummingbird
import PostgresNIO
import Runtime
import Tenancy

/// `/admin/v1/tenants/{slug}/sources…` and `/schema`: register a source (connect, introspect,
/// seal its credentials, store), list, refresh, delete, and read the tenant's model.
struct SourceAdminAPI {
    let node: NodeServices
    let catalog: SourceCatalog

    func register(on group: RouterGroup<EdgeContext>) {
        group.post("tenants/:slug/sources", use: create)
        group.get("tenants/:slug/sources", use: list)
        group.delete("tenants/:slug/sources/:source", use: delete)
        group.put("tenants/:slug/sources/:source", use: reupload)
        group.post("tenants/:slug/sources/:source/refresh", use: refresh)
        group.get("tenants/:slug/schema", use: schema)
    }

    static let namePattern = "^[a-z][a-z0-9_-]{0,62}$"

    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let body = try await JSONBody.read(request)
        let kind = try body.requiredString("kind")
        let name = try body.requiredString("name")
        guard Self.validName(name) else { throw APIError.invalidField("name", "must match \(Self.namePattern)") }
        let registration: SourceCatalog.PostgresRegistration
        switch kind {
        case "postgres":
            try body.allowOnly(["name", "kind", "url", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"])
            registration = try postgres(body, name: name, kind: kind, urlField: "url")
        case "supabase":
            try body.allowOnly(["name", "kind", "url", "serviceKey", "dbUrl", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"])
            guard try body.string("dbUrl") != nil else {
                return try await createSupabaseProxy(body, slug: slug, name: name, context: context)
            }
            var postgres = try postgres(body, name: name, kind: kind, urlField: "dbUrl")
            let projectURL = try body.requiredString("url")
            guard let url = URL(string: projectURL), url.scheme == "https" || url.scheme == "http", url.host != nil else {
                throw APIError.invalidField("url", "must be the project's http(s) URL")
            }
            postgres.extra["projectUrl"] = .string(projectURL)
            if let key = try body.string("serviceKey") { postgres.extraSecrets["serviceKey"] = .string(key) }
            registration = postgres
        case "schema":
            return try await createUploaded(body, slug: slug, name: name, context: context)
        case "openapi":
            return try await createUpstream(body, slug: slug, name: name, context: context)
        case "graphql":
            return try await createGraphQL(body, slug: slug, name: name, context: context)
        case "mongodb":
            throw APIError(
                status: .notImplemented, code: "MB306", message: "source kind '\(kind)' is not available yet",
                hint: "postgres, supabase (with dbUrl), schema, openapi and graphql sources are available")
        default:
            throw APIError.invalidField("kind", "must be one of postgres, supabase, schema, openapi, graphql, mongodb")
        }
        if try await node.store.sources(slug).contains(where: { $0.name == name }) { throw APIError.sourceExists(name) }
        let model: SchemaModel
        do {
            model = try await catalog.register(tenant: slug, registration, requestID: context.requestID)
        } catch ControlPlaneError.duplicate {
            throw APIError.sourceExists(name)
        } catch {
            throw Self.connectionError(error, url: registration.url)
        }
        // The tree picks the new source up when it next starts.
        await node.tenantChanged(slug)
        var summary = Self.summaryObject(name: name, kind: kind, model: model, schemas: registration.schemas)
        summary["changeCapture"] = Self.captureSummary(await PostgresChangeFeed.probe(url: registration.url, tryPlugin: true, logger: context.logger))
        return try jsonResponse(.object(summary), status: .created)
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let records = try await node.store.sources(slug)
        return try jsonResponse(.array(records.map { record in
            var object = record.config
            object["name"] = .string(record.name)
            object["kind"] = .string(record.kind)
            let model = SourceCatalog.model(of: record)
            object["entities"] = .integer(Int64(model.entities.count))
            object["relations"] = .integer(Int64(model.relations.count))
            object["functions"] = .integer(Int64(model.operations.count))
            return .object(object)
        }))
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let name = context.parameters.get("source") ?? ""
        let audit = AuditEntry(at: Date(), actor: "admin", action: "source.delete", tenant: slug, requestID: context.requestID, detail: ["name": .string(name)])
        let record = try await node.store.sources(slug).first { $0.name == name }
        guard try await node.store.deleteSource(tenant: slug, name: name, audit: audit) else { throw APIError.sourceNotFound(name) }
        await node.tenantChanged(slug)
        if let record { await catalog.dropProvisioned(record) }
        return Response(status: .noContent)
    }

    @Sendable func refresh(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let name = context.parameters.get("source") ?? ""
        guard let record = try await node.store.sources(slug).first(where: { $0.name == name }) else { throw APIError.sourceNotFound(name) }
        let model: SchemaModel
        do {
            guard let refreshed = try await catalog.refresh(tenant: slug, name: name, requestID: context.requestID) else {
                throw APIError.sourceNotFound(name)
            }
            model = refreshed
        } catch let error as APIError {
            throw error
        } catch let error as SourceCatalogError {
            throw APIError(status: .conflict, code: "MB323", message: error.description)
        } catch {
            throw Self.connectionError(error, url: nil)
        }
        await node.tenantChanged(slug)
        let schemas = record.config["schemas"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return try jsonResponse(Self.summary(name: name, kind: record.kind, model: model, schemas: schemas))
    }

    @Sendable func schema(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        var sources: [JSONValue] = []
        for record in try await node.store.sources(slug) {
            let model = (try? JSONValue.parse(Array(record.model.utf8))) ?? .null
            sources.append(["name": .string(record.name), "kind": .string(record.kind), "model": model])
        }
        return try jsonResponse(["tenant": .string(slug), "sources": .array(sources)])
    }

    // MARK: - Helpers

    static func validName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.unicodeScalars.count <= 63 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    /// `kind: openapi`: an existing REST API described by OpenAPI 3.x or Swagger 2.0 (JSON), proxied
    /// under `{apiUrl}/api/v1` with the tenant's credentials for it.
    func createUpstream(_ body: JSONBody, slug: String, name: String, context: EdgeContext) async throws -> Response {
        try body.allowOnly(["name", "kind", "document", "specUrl", "baseUrl", "headers"])
        let text: String
        if let document = body.object["document"], document != .null {
            text = document.stringValue ?? document.jsonString
        } else if let specURL = try body.string("specUrl") {
            guard let url = URL(string: specURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw APIError.invalidField("specUrl", "expected an http(s) URL")
            }
            text = try await Self.fetchSpec(specURL)
        } else {
            throw APIError.invalidField("document", "give the OpenAPI document, or specUrl to fetch it from")
        }
        let spec: UpstreamSpec
        do {
            spec = try UpstreamSpec.parse(text)
        } catch {
            throw APIError(status: .badRequest, code: "MB320", message: "the API description cannot be read: \(error.message)", details: error.location)
        }
        var baseURL = try body.string("baseUrl")
        if baseURL == nil, let server = spec.document["servers"]?.arrayValue?.first?["url"]?.stringValue, server.hasPrefix("http") { baseURL = server }
        guard let base = baseURL, let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw APIError.invalidField("baseUrl", "expected the upstream's http(s) base URL")
        }
        let headers = try Self.headers(body)
        var model = (try? UploadedSchema.parse(text, format: spec.isSwagger ? .jsonschema : .openapi).model) ?? SchemaModel()
        model.operations = spec.operations
        if try await node.store.sources(slug).contains(where: { $0.name == name }) { throw APIError.sourceExists(name) }
        let config: JSONObject = ["baseUrl": .string(base), "spec": spec.document, "headerNames": .array(headers.keys.map(JSONValue.string))]
        do {
            try await catalog.registerStored(
                tenant: slug, name: name, kind: "openapi", config: config, secrets: ["headers": .object(headers)], model: model, requestID: context.requestID)
        } catch ControlPlaneError.duplicate {
            throw APIError.sourceExists(name)
        }
        await node.tenantChanged(slug)
        var summary = Self.summaryObject(name: name, kind: "openapi", model: model, schemas: [])
        summary["baseUrl"] = .string(base)
        summary["operations"] = .array(spec.routes.map { .string("\($0.method) \($0.path) (\($0.operationID))") })
        return try jsonResponse(.object(summary), status: .created)
    }

    /// Upstream credentials: header names and one-line values, nothing that could split a request.
    static func headers(_ body: JSONBody) throws -> JSONObject {
        var headers = JSONObject()
        for (header, value) in try body.object("headers") ?? [:] {
            guard let text = value.stringValue, !text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }),
                !header.isEmpty, header.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3A })
            else { throw APIError.invalidField("headers.\(header)", "expected a header name with a one-line string value") }
            headers[header] = .string(text)
        }
        return headers
    }

    /// `PUT …/sources/{name}` `{format, document, allowDestructive?}`: a new version of an uploaded
    /// schema. A provisioned one is migrated in place (additive steps always, destructive ones only
    /// when allowed, all in one transaction); one served over the tenant's database, or kept as a
    /// model, takes the new model as it is.
    @Sendable func reupload(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let name = context.parameters.get("source") ?? ""
        guard let record = try await node.store.sources(slug).first(where: { $0.name == name }) else { throw APIError.sourceNotFound(name) }
        guard record.kind == "schema" else {
            throw APIError(status: .conflict, code: "MB323", message: "only uploaded schemas are replaced by a new document; refresh other sources")
        }
        let body = try await JSONBody.read(request)
        try body.allowOnly(["format", "document", "allowDestructive"])
        let formatName = try body.requiredString("format")
        guard let format = UploadedSchema.Format(rawValue: formatName) else {
            throw APIError.invalidField("format", "must be one of \(UploadedSchema.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let document = try body.requiredString("document")
        let parsed = try await Self.parse(document, format: format)
        var changes: [String] = []
        let model: SchemaModel
        if record.config["provisioned"] == true {
            let (url, schemas, _) = try catalog.open(record)
            let provisioner = SchemaProvisioner(url: url, schema: schemas.first ?? "", logger: context.logger)
            let migration: SchemaMigration
            do {
                migration = try SchemaMigration.plan(from: SourceCatalog.model(of: record), to: parsed.model, provisioner: provisioner)
            } catch {
                throw APIError(status: .unprocessableContent, code: "MB321", message: "the new model cannot be migrated to: \(error.message)")
            }
            if !migration.destructive.isEmpty, try body.bool("allowDestructive") != true {
                throw APIError(
                    status: .conflict, code: "MB328", message: "the new schema would lose or rewrite data", details: migration.destructive.joined(separator: "; "),
                    hint: "send allowDestructive: true to apply it anyway")
            }
            do {
                if !migration.statements.isEmpty { try await provisioner.apply(migration.statements) }
            } catch {
                let state = PostgresControlPlaneStore.sqlState(of: error)
                throw APIError(status: .conflict, code: "MB329", message: "the hosted database refused the migration; nothing was changed", details: state.map { "SQLSTATE \($0)" } ?? "\(error)")
            }
            do {
                guard let refreshed = try await catalog.refresh(tenant: slug, name: name, requestID: context.requestID) else { throw APIError.sourceNotFound(name) }
                model = refreshed
            } catch let error as APIError {
                throw error
            } catch {
                throw Self.connectionError(error, url: url)
            }
            changes = migration.changes
        } else {
            model = parsed.model
            let audit = AuditEntry(at: Date(), actor: "admin", action: "source.reupload", tenant: slug, requestID: context.requestID, detail: ["name": .string(name)])
            _ = try await node.store.updateSourceModel(
                tenant: slug, name: name, model: try await SourceCatalog.encoded(model), audit: audit)
            changes = ["model replaced"]
        }
        await node.tenantChanged(slug)
        var summary = Self.summaryObject(name: name, kind: "schema", model: model, schemas: record.config["schemas"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        summary["changes"] = .array(changes.map(JSONValue.string))
        summary["warnings"] = .array(parsed.warnings.map(JSONValue.string))
        return try jsonResponse(.object(summary))
    }

    /// `kind: supabase` without `dbUrl`: the project is reached through its REST endpoint with its
    /// service key; the model comes from the project's `/rest/v1/` description.
    func createSupabaseProxy(_ body: JSONBody, slug: String, name: String, context: EdgeContext) async throws -> Response {
        let projectURL = try body.requiredString("url")
        guard let url = URL(string: projectURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw APIError.invalidField("url", "must be the project's http(s) URL")
        }
        let serviceKey = try body.requiredString("serviceKey")
        guard !serviceKey.isEmpty, !serviceKey.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw APIError.invalidField("serviceKey", "expected the project's service-role key")
        }
        let model: SchemaModel
        do {
            model = try await RestProxySource.describe(projectURL: projectURL, serviceKey: serviceKey)
        } catch {
            throw APIError(status: .unprocessableContent, code: "MB327", message: "the project's REST endpoint cannot be read: \(UpstreamAPI.error(error, path: []).message)")
        }
        if try await node.store.sources(slug).contains(where: { $0.name == name }) { throw APIError.sourceExists(name) }
        do {
            try await catalog.registerStored(
                tenant: slug, name: name, kind: "supabase", config: ["projectUrl": .string(projectURL), "proxy": true],
                secrets: ["serviceKey": .string(serviceKey)], model: model, requestID: context.requestID)
        } catch ControlPlaneError.duplicate {
            throw APIError.sourceExists(name)
        }
        await node.tenantChanged(slug)
        var summary = Self.summaryObject(name: name, kind: "supabase", model: model, schemas: [])
        summary["proxy"] = true
        return try jsonResponse(.object(summary), status: .created)
    }

    /// `kind: graphql`: an existing GraphQL API, introspected once and proxied at `{apiUrl}/graphql/v1`.
    func createGraphQL(_ body: JSONBody, slug: String, name: String, context: EdgeContext) async throws -> Response {
        try body.allowOnly(["name", "kind", "url", "headers"])
        let url = try body.requiredString("url")
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw APIError.invalidField("url", "expected the GraphQL endpoint's http(s) URL")
        }
        let headers = try Self.headers(body)
        let model: SchemaModel
        do {
            model = try await GraphQLUpstream.introspect(url: url, headers: headers.compactMap { name, value in value.stringValue.map { (name, $0) } })
        } catch {
            throw APIError(status: .unprocessableContent, code: "MB326", message: "the GraphQL endpoint cannot be introspected: \(UpstreamAPI.error(error, path: []).message)")
        }
        if try await node.store.sources(slug).contains(where: { $0.name == name }) { throw APIError.sourceExists(name) }
        do {
            try await catalog.registerStored(
                tenant: slug, name: name, kind: "graphql", config: ["url": .string(url), "headerNames": .array(headers.keys.map(JSONValue.string))],
                secrets: ["headers": .object(headers)], model: model, requestID: context.requestID)
        } catch ControlPlaneError.duplicate {
            throw APIError.sourceExists(name)
        }
        await node.tenantChanged(slug)
        var summary = Self.summaryObject(name: name, kind: "graphql", model: model, schemas: [])
        summary["url"] = .string(url)
        return try jsonResponse(.object(summary), status: .created)
    }

    static func fetchSpec(_ url: String) async throws -> String {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            guard response.status.code == 200 else {
                throw APIError(status: .unprocessableContent, code: "MB324", message: "fetching the spec answered HTTP \(response.status.code)")
            }
            let body = try await response.body.collect(upTo: UploadedSchema.maxDocumentBytes)
            return String(buffer: body)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(status: .unprocessableContent, code: "MB324", message: "cannot fetch the spec from \(url): \(error)")
        }
    }

    /// `kind: schema`: an uploaded document, served over `url`, provisioned into the hosted
    /// database (`provision: true`), or kept as a model only.
    func createUploaded(_ body: JSONBody, slug: String, name: String, context: EdgeContext) async throws -> Response {
        try body.allowOnly(["name", "kind", "format", "document", "url", "provision", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"])
        let formatName = try body.requiredString("format")
        guard let format = UploadedSchema.Format(rawValue: formatName) else {
            throw APIError.invalidField("format", "must be one of \(UploadedSchema.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let document = try body.requiredString("document")
        let provision = try body.bool("provision") ?? false
        if provision && body.object["url"] != nil {
            throw APIError.invalidField("provision", "either serve the model over your database (url) or provision it, not both")
        }
        let parsed = try await Self.parse(document, format: format)
        guard !parsed.model.entities.isEmpty else {
            throw APIError(status: .badRequest, code: "MB320", message: "the \(format.rawValue) document defines no tables", details: "document")
        }
        if try await node.store.sources(slug).contains(where: { $0.name == name }) { throw APIError.sourceExists(name) }
        var config: JSONObject = ["format": .string(format.rawValue), "warnings": .array(parsed.warnings.map(JSONValue.string))]
        let model: SchemaModel
        var schemas = ["public"]
        if provision {
            guard let hosted = node.configuration.hostedDatabaseURL else {
                throw APIError(
                    status: .unprocessableContent, code: "MB322", message: "no hosted database to provision into",
                    hint: "set MINIBAAS_HOSTED_DATABASE_URL (cluster nodes default to DATABASE_URL)")
            }
            guard let schema = SchemaProvisioner.schemaName(tenant: slug, source: name) else {
                throw APIError.invalidField("name", "tenant and source names together must fit PostgreSQL's 63-byte schema names")
            }
            let provisioner = SchemaProvisioner(url: hosted, schema: schema, logger: context.logger)
            let plan: (statements: [String], warnings: [String])
            do {
                plan = try provisioner.statements(for: parsed.model)
            } catch {
                throw APIError(status: .unprocessableContent, code: "MB321", message: "the model cannot be provisioned: \(error.message)")
            }
            do {
                try await provisioner.apply(plan.statements)
            } catch where PostgresControlPlaneStore.sqlState(of: error) == "42P06" {
                throw APIError(status: .conflict, code: "MB325", message: "the hosted database already has a schema named \(schema)")
            } catch {
                throw Self.connectionError(error, url: hosted)
            }
            config["provisioned"] = true
            config["served"] = true
            config["warnings"] = .array((parsed.warnings + plan.warnings).map(JSONValue.string))
            var registration = SourceCatalog.PostgresRegistration(name: name, kind: "schema", url: hosted, schemas: [schema], maxConnections: 10)
            registration.extra = config
            registration.extra["preparedStatements"] = try Self.preparedStatements(body)
            schemas = [schema]
            do {
                model = try await catalog.register(tenant: slug, registration, requestID: context.requestID)
            } catch {
                // Nothing is half-made: the tables go again when the source cannot be recorded.
                try? await provisioner.drop()
                if case ControlPlaneError.duplicate = error { throw APIError.sourceExists(name) }
                throw Self.connectionError(error, url: hosted)
            }
        } else if body.object["url"] != nil {
            var registration = try postgres(body, name: name, kind: "schema", urlField: "url")
            config["served"] = true
            for (key, value) in config { registration.extra[key] = value }
            registration.uploadedModel = parsed.model
            schemas = registration.schemas
            do {
                model = try await catalog.register(tenant: slug, registration, requestID: context.requestID)
            } catch ControlPlaneError.duplicate {
                throw APIError.sourceExists(name)
            } catch {
                throw Self.connectionError(error, url: registration.url)
            }
        } else {
            do {
                try await catalog.registerStored(tenant: slug, name: name, kind: "schema", config: config, model: parsed.model, requestID: context.requestID)
            } catch ControlPlaneError.duplicate {
                throw APIError.sourceExists(name)
            }
            model = parsed.model
        }
        await node.tenantChanged(slug)
        var summary = Self.summaryObject(name: name, kind: "schema", model: model, schemas: schemas)
        summary["format"] = .string(format.rawValue)
        summary["provisioned"] = .bool(provision)
        summary["warnings"] = config["warnings"] ?? []
        return try jsonResponse(.object(summary), status: .created)
    }

    func postgres(_ body: JSONBody, name: String, kind: String, urlField: String) throws -> SourceCatalog.PostgresRegistration {
        let text = try body.requiredString(urlField)
        let url: PostgresURL
        do { url = try PostgresURL(text) } catch { throw APIError.invalidField(urlField, "\(error)") }
        var schemas = ["public"]
        if let value = body.object["schemas"] {
            guard let list = value.arrayValue, !list.isEmpty, list.count <= 50,
                let names = Optional(list.compactMap(\.stringValue)), names.count == list.count, names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 })
            else { throw APIError.invalidField("schemas", "must be a non-empty list of schema names") }
            schemas = names
        }
        var maxConnections = 10
        if let value = body.object["maxConnections"] {
            guard let number = value.intValue, (1...100).contains(number) else {
                throw APIError.invalidField("maxConnections", "must be a whole number from 1 to 100")
            }
            maxConnections = Int(number)
        }
        var registration = SourceCatalog.PostgresRegistration(name: name, kind: kind, url: url, schemas: schemas, maxConnections: maxConnections)
        if let value = body.object["acquireTimeoutMs"] {
            guard let number = value.intValue, (10...60_000).contains(number) else {
                throw APIError.invalidField("acquireTimeoutMs", "must be a whole number from 10 to 60000")
            }
            registration.extra["acquireTimeoutMs"] = .integer(number)
        }
        registration.extra["preparedStatements"] = try Self.preparedStatements(body)
        return registration
    }

    /// An uploaded document, parsed off the event loops (up to the body limit of YAML or SQL).
    static func parse(_ document: String, format: UploadedSchema.Format) async throws -> UploadedSchema.Parsed {
        do {
            return try await offloaded { () throws -> UploadedSchema.Parsed in try UploadedSchema.parse(document, format: format) }
        } catch let error as UploadedSchema.Failure {
            throw APIError(status: .badRequest, code: "MB320", message: "the \(format.rawValue) document cannot be read: \(error.message)", details: error.location)
        }
    }

    /// `preparedStatements`, when given: a boolean.
    static func preparedStatements(_ body: JSONBody) throws -> JSONValue? {
        guard let value = body.object["preparedStatements"] else { return nil }
        guard case .bool = value else {
            throw APIError.invalidField("preparedStatements", "must be true or false (false for a pooler in transaction mode)")
        }
        return value
    }

    /// Names what went wrong reaching the database, without echoing its credentials.
    static func connectionError(_ error: any Error, url: PostgresURL?) -> APIError {
        let target = url.map { "\($0.host):\($0.port)/\($0.database)" } ?? "the source"
        if let error = error as? SourceError {
            return APIError(status: .unprocessableContent, code: "MB312", message: error.description)
        }
        if error is TimeoutError {
            return APIError(status: .unprocessableContent, code: "MB310", message: "timed out connecting to \(target)")
        }
        var psql = error as? PSQLError
        if psql == nil, let wrapped = error as? PostgresTransactionError { psql = wrapped.closureError as? PSQLError }
        if let psql {
            if let state = psql.serverInfo?[.sqlState] {
                let message = psql.serverInfo?[.message] ?? "database error"
                switch state {
                case "28P01", "28000": return APIError(status: .unprocessableContent, code: "MB311", message: "authentication failed for \(target): \(message)")
                case "3D000": return APIError(status: .unprocessableContent, code: "MB313", message: "database does not exist: \(message)")
                default: return APIError(status: .unprocessableContent, code: "MB314", message: "the database refused introspection: \(message)", details: "SQLSTATE \(state)")
                }
            }
            let reason = "\(psql.code)".replacingOccurrences(of: "PSQLError.Code.", with: "")
            return APIError(status: .unprocessableContent, code: "MB310", message: "cannot connect to \(target): \(reason)")
        }
        return APIError(status: .unprocessableContent, code: "MB310", message: "cannot connect to \(target): \(error)")
    }

    /// Whether realtime can follow the source's own changes, and if not, why and what still works.
    static func captureSummary(_ capability: PostgresChangeFeed.Capability) -> JSONValue {
        switch capability {
        case .available:
            ["mode": "logical-decoding", "detail": "every committed change is streamed from a wal2json replication slot"]
        case .unavailable(let why):
            ["mode": "rest-writes", "reason": .string(why),
             "detail": "only changes made through this API's REST writes reach realtime subscribers"]
        }
    }

    static func summary(name: String, kind: String, model: SchemaModel, schemas: [String]) -> JSONValue {
        .object(summaryObject(name: name, kind: kind, model: model, schemas: schemas))
    }

    /// What registration answers: the entities, relations and functions found.
    static func summaryObject(name: String, kind: String, model: SchemaModel, schemas: [String]) -> JSONObject {
        [
            "name": .string(name), "kind": .string(kind), "schemas": .array(schemas.map(JSONValue.string)),
            "entities": .array(model.entities.map { .string($0.name) }),
            "relations": .array(model.relations.map { relation in
                ["from": .string(relation.from.name), "to": .string(relation.to.name), "kind": .string(relation.kind.rawValue),
                 "constraint": .string(relation.constraint)]
            }),
            "functions": .array(model.operations.map { .string($0.name) }),
        ]
    }
}
