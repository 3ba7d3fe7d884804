import Connectors
import Foundation
import Hummingbird
import Runtime
import Tenancy

/// `/admin/v1/tenants/{slug}/sources…` and `/schema`: register a source, list, refresh, delete,
/// replace an uploaded schema, and read the tenant's model. What registering each kind checks,
/// reaches and stores is Connectors' `SourceRegistrar`; this adapter reads requests, tells the
/// tenant of the change, and answers.
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

    /// Registers a source: connect, introspect (or read the upstream, or provision the upload),
    /// seal its credentials, store.
    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let body = try await JSONBody.read(request)
        let kindName = try body.requiredString("kind")
        let name = try body.requiredString("name")
        guard Self.validName(name) else { throw APIError.invalidField("name", "must match \(Self.namePattern)") }
        guard let kind = SourceKind(rawValue: kindName) else {
            throw APIError.invalidField("kind", "must be one of postgres, supabase, schema, sqlite, openapi, graphql, mongodb")
        }
        let registrar = self.registrar(for: context)
        var registration: SourceRegistration
        do {
            switch kind {
            case .postgres:
                try body.allowOnly(["name", "kind", "url", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"])
                registration = try await registrar.registerPostgres(
                    tenant: slug, name: name, url: body.requiredString("url"), fields: body.object, requestID: context.requestID)
            case .supabase:
                try body.allowOnly(["name", "kind", "url", "serviceKey", "dbUrl", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"])
                registration = try await registrar.registerSupabase(
                    tenant: slug, name: name, databaseURL: body.string("dbUrl"), fields: body.object, requestID: context.requestID)
            case .schema:
                try body.allowOnly(
                    ["name", "kind", "format", "document", "url", "provision", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"])
                let format = try SourceRegistrar.uploadFormat(body.requiredString("format"))
                registration = try await registrar.registerUpload(
                    tenant: slug, name: name, format: format, document: body.requiredString("document"), provision: body.bool("provision") ?? false,
                    fields: body.object, requestID: context.requestID)
            case .openapi:
                try body.allowOnly(["name", "kind", "document", "specUrl", "baseUrl", "headers"])
                registration = try await registrar.registerOpenAPI(tenant: slug, name: name, fields: body.object, requestID: context.requestID)
            case .sqlite:
                try body.allowOnly(["name", "kind", "path"])
                registration = try await registrar.registerSQLite(tenant: slug, name: name, fields: body.object, requestID: context.requestID)
            case .mongodb:
                try body.allowOnly([
                    "name", "kind", "url", "database", "sampleSize", "collections", "relations", "maxConnections", "acquireTimeoutMs", "changeStreams",
                ])
                registration = try await registrar.registerMongoDB(tenant: slug, name: name, fields: body.object, requestID: context.requestID)
            case .graphql:
                try body.allowOnly(["name", "kind", "url", "headers"])
                registration = try await registrar.registerGraphQL(
                    tenant: slug, name: name, url: body.requiredString("url"), fields: body.object, requestID: context.requestID)
            }
        } catch let error as RegistrationError {
            throw APIError(error)
        }
        // The tree picks the new source up when it next starts.
        await node.tenantChanged(slug)
        registration = await registrar.probeChangeCapture(registration)
        return try jsonResponse(Self.summary(registration), status: .created)
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
        let name = context.name("source") ?? ""
        let audit = AuditEntry(at: Date(), actor: "admin", action: "source.delete", tenant: slug, requestID: context.requestID, detail: ["name": .string(name)])
        let record = try await node.store.sources(slug).first { $0.name == name }
        guard try await node.store.deleteSource(tenant: slug, name: name, audit: audit) else { throw APIError.sourceNotFound(name) }
        await node.tenantChanged(slug)
        if let record { await catalog.dropProvisioned(record) }
        return Response(status: .noContent)
    }

    @Sendable func refresh(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let name = context.name("source") ?? ""
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
        } catch let error as RegistrationError {
            throw APIError(error)
        } catch {
            throw APIError(RegistrationError.connection(error, url: nil))
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

    /// `PUT …/sources/{name}` `{format, document, allowDestructive?}`: a new version of an uploaded
    /// schema (see `SourceRegistrar.reupload`).
    @Sendable func reupload(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let name = context.name("source") ?? ""
        let registrar = self.registrar(for: context)
        let registration: SourceRegistration
        do {
            // The source is looked up before the body is read: an unknown one is a 404 whatever is sent.
            let record = try await registrar.uploadedSource(tenant: slug, name: name)
            let body = try await JSONBody.read(request)
            try body.allowOnly(["format", "document", "allowDestructive"])
            let format = try SourceRegistrar.uploadFormat(body.requiredString("format"))
            registration = try await registrar.reupload(
                record, format: format, document: body.requiredString("document"), fields: body.object, requestID: context.requestID)
        } catch let error as RegistrationError {
            throw APIError(error)
        }
        await node.tenantChanged(slug)
        return try jsonResponse(Self.summary(registration))
    }

    // MARK: - Helpers

    /// Registration as this request runs it: provisioning and probes log under the request.
    func registrar(for context: EdgeContext) -> SourceRegistrar {
        SourceRegistrar(catalog: catalog, hostedDatabaseURL: node.configuration.hostedDatabaseURL, logger: context.logger)
    }

    static func validName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.unicodeScalars.count <= 63 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    /// What registering (or re-uploading) answers: the summary, then what the kind adds.
    static func summary(_ registration: SourceRegistration) -> JSONValue {
        var summary = summaryObject(name: registration.name, kind: registration.kind.rawValue, model: registration.model, schemas: registration.schemas)
        if let capture = registration.changeCapture { summary["changeCapture"] = capture.summary }
        if let capture = registration.changeCaptureSummary { summary["changeCapture"] = capture }
        if let base = registration.baseURL { summary["baseUrl"] = .string(base) }
        if let operations = registration.operations { summary["operations"] = .array(operations.map(JSONValue.string)) }
        if let url = registration.url { summary["url"] = .string(url) }
        if let proxy = registration.proxy { summary["proxy"] = .bool(proxy) }
        if let format = registration.format { summary["format"] = .string(format.rawValue) }
        if let provisioned = registration.provisioned { summary["provisioned"] = .bool(provisioned) }
        if let changes = registration.changes { summary["changes"] = .array(changes.map(JSONValue.string)) }
        if let warnings = registration.warnings { summary["warnings"] = .array(warnings.map(JSONValue.string)) }
        if let warnings = registration.sampleWarnings { summary["warnings"] = .array(warnings) }
        return .object(summary)
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
