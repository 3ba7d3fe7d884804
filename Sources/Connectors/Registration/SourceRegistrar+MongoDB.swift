import CMongoc
import Foundation
import Runtime
import Tenancy

/// `kind: mongodb` (contract ../shared/contracts/mongodb.md): a MongoDB database reached with
/// libmongoc, its model sampled; the URL is sealed like a PostgreSQL source's.
extension SourceRegistrar {
    /// What a MongoDB source's record keeps besides its sealed URL.
    struct MongoSettings {
        var database: String
        var sampleSize: Int
        var collections: [String]?
        var relations: [MongoIntrospector.DeclaredRelation]
        var relationsJSON: JSONValue?
        var maxConnections: Int
        var acquireTimeoutMs: Int
        var changeStreams: String
    }

    public func registerMongoDB(tenant: String, name: String, fields: JSONObject, requestID: String?) async throws -> SourceRegistration {
        let request = RegistrationFields(fields)
        let url = try request.requiredString("url")
        let settings = try Self.mongoSettings(url: url, request: request)
        try await refuseTaken(name, tenant: tenant)
        let found = try await Self.sample(url: url, settings: settings)
        var config: JSONObject = [
            "database": .string(settings.database), "sampleSize": .integer(Int64(settings.sampleSize)),
            "maxConnections": .integer(Int64(settings.maxConnections)), "acquireTimeoutMs": .integer(Int64(settings.acquireTimeoutMs)),
            "changeStreams": .string(settings.changeStreams), "host": .string(Self.redacted(url)), "replicaSet": .bool(found.replicaSet),
        ]
        if let collections = settings.collections { config["collections"] = .array(collections.map(JSONValue.string)) }
        if let relations = settings.relationsJSON { config["relations"] = relations }
        do {
            try await catalog.registerStored(
                tenant: tenant, name: name, kind: SourceKind.mongodb.rawValue, config: config, secrets: ["url": .string(url)], model: found.model,
                requestID: requestID)
        } catch {
            if case ControlPlaneError.duplicate = error { throw RegistrationError.sourceExists(name) }
            throw error
        }
        var summary = SourceRegistration(name: name, kind: .mongodb, model: found.model, schemas: [settings.database])
        summary.changeCaptureSummary = Self.mongoChangeCapture(replicaSet: found.replicaSet, setting: settings.changeStreams)
        summary.sampleWarnings = found.warnings
        return summary
    }

    /// Connects and samples off the event loops; refusals in the admin API's terms.
    static func sample(url: String, settings: MongoSettings) async throws -> MongoIntrospector.Result {
        let introspector = MongoIntrospector(
            database: settings.database, sampleSize: settings.sampleSize, collections: settings.collections, relations: settings.relations)
        do {
            return try await offloaded { try introspector.introspect(url: url) }
        } catch {
            throw mongoRefusal(error, url: url)
        }
    }

    /// How realtime will see the source's changes (contract: `{mode, reason}`).
    static func mongoChangeCapture(replicaSet: Bool, setting: String) -> JSONValue {
        if setting == "off" {
            return ["mode": "rest-writes", "reason": "change streams are turned off for this source",
                    "detail": "only changes made through this API's REST writes reach realtime subscribers"]
        }
        if replicaSet {
            return ["mode": "change-streams", "detail": "every change is read from a change stream of the database (resumed after the last dispatched event)"]
        }
        return ["mode": "rest-writes", "reason": "the server is a standalone (no replica set): it has no change streams",
                "detail": "only changes made through this API's REST writes reach realtime subscribers"]
    }

    /// `fresh` added to `current`: new collections, new fields, new relations; nothing removed.
    static func merged(_ current: SchemaModel, _ fresh: SchemaModel) -> SchemaModel {
        var model = current
        for entity in fresh.entities {
            guard let index = model.entities.firstIndex(where: { $0.name == entity.name }) else {
                model.entities.append(entity)
                continue
            }
            for column in entity.columns where model.entities[index].column(named: column.name) == nil {
                model.entities[index].columns.append(column)
            }
            for key in entity.uniqueKeys where !model.entities[index].uniqueKeys.contains(where: { $0.name == key.name }) {
                model.entities[index].uniqueKeys.append(key)
            }
        }
        for relation in fresh.relations where !model.relations.contains(relation) { model.relations.append(relation) }
        return model
    }

    static func mongoSettings(url: String, request: RegistrationFields) throws -> MongoSettings {
        guard url.hasPrefix("mongodb://") || url.hasPrefix("mongodb+srv://") else {
            throw RegistrationError(status: 400, code: "MB330", message: "'url' must be a mongodb:// or mongodb+srv:// URL")
        }
        _ = MongoLibrary.ready
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else {
            throw RegistrationError(status: 400, code: "MB330", message: "'url' is not a valid MongoDB URL", details: MongoError(error).message)
        }
        let fromURL = mongoc_uri_get_database(uri).map { String(cString: $0) }
        mongoc_uri_destroy(uri)
        guard let database = try request.string("database") ?? fromURL, !database.isEmpty else {
            throw RegistrationError(status: 400, code: "MB330", message: "'database' is required (or name it in the URL's path)")
        }
        guard database.utf8.count < 64, !database.contains(where: { "/\\. \"$\0".contains($0) }) else {
            throw RegistrationError(status: 400, code: "MB330", message: "'database' is not a valid MongoDB database name")
        }
        func integer(_ field: String, _ range: ClosedRange<Int64>, default value: Int) throws -> Int {
            guard let given = request.values[field], given != .null else { return value }
            guard let number = given.intValue, range.contains(number) else {
                throw RegistrationError.invalidField(field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(number)
        }
        var collections: [String]?
        if let value = request.values["collections"], value != .null {
            guard let list = value.arrayValue, let names = Optional(list.compactMap(\.stringValue)), names.count == list.count, !names.isEmpty else {
                throw RegistrationError.invalidField("collections", "must be a non-empty list of collection names")
            }
            collections = names
        }
        var relations: [MongoIntrospector.DeclaredRelation] = []
        let relationsJSON = request.values["relations"]
        if let value = relationsJSON, value != .null {
            guard let list = value.arrayValue else { throw badRelation("relations must be a list of {name, from, to}") }
            for item in list {
                guard let name = item["name"]?.stringValue, !name.isEmpty, let from = item["from"]?.stringValue.flatMap(Self.dotted),
                    let to = item["to"]?.stringValue.flatMap(Self.dotted)
                else { throw badRelation("each relation needs a name, and from and to as collection.field") }
                relations.append(.init(name: name, from: from, to: to))
            }
        }
        let changeStreams = try request.string("changeStreams") ?? "auto"
        guard changeStreams == "auto" || changeStreams == "off" else { throw RegistrationError.invalidField("changeStreams", "must be auto or off") }
        return MongoSettings(
            database: database, sampleSize: try integer("sampleSize", 1...10_000, default: 100), collections: collections, relations: relations,
            relationsJSON: relationsJSON?.nonNull, maxConnections: try integer("maxConnections", 1...100, default: 10),
            acquireTimeoutMs: try integer("acquireTimeoutMs", 10...60_000, default: 5_000), changeStreams: changeStreams)
    }

    static func badRelation(_ why: String) -> RegistrationError {
        RegistrationError(status: 400, code: "MB339", message: "a declared relation is not usable", details: why)
    }

    /// `orders.user_id` → ("orders", "user_id").
    static func dotted(_ text: String) -> (collection: String, field: String)? {
        guard let dot = text.firstIndex(of: "."), dot != text.startIndex, text.index(after: dot) != text.endIndex else { return nil }
        return (String(text[..<dot]), String(text[text.index(after: dot)...]))
    }

    /// The URL without its credentials, for the record and the audit log.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard let at = authority.lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + "***@" + String(rest[rest.index(after: at)...])
    }

    /// Why registering did not work (contract codes MB331–MB334, MB339).
    static func mongoRefusal(_ error: any Error, url: String) -> RegistrationError {
        let target = redacted(url)
        switch error {
        case let error as RegistrationError:
            return error
        case let error as MongoModelError:
            if case .badRelation = error { return badRelation(error.description) }
            return RegistrationError(status: 422, code: "MB333", message: error.description)
        case let error as MongoError where error.isAuthentication:
            return RegistrationError(status: 422, code: "MB332", message: "authentication failed for \(target)", details: error.message)
        case let error as MongoError where error.isUnreachable:
            return RegistrationError(status: 422, code: "MB331", message: "cannot reach the MongoDB server at \(target)", details: error.message)
        case let error as MongoError:
            return RegistrationError(status: 422, code: "MB334", message: "the MongoDB server refused to describe the database", details: error.message)
        default:
            return RegistrationError(status: 422, code: "MB334", message: "the MongoDB database cannot be read", details: "\(error)")
        }
    }
}

extension SourceCatalog {
    /// Re-samples a MongoDB source; fields and collections are only added (a field once seen
    /// keeps its column), so requests that worked keep working.
    func refreshMongoDB(_ record: SourceRecord, current: SchemaModel) async throws -> SchemaModel {
        guard let url = try secrets(of: record)["url"]?.stringValue else { throw ControlPlaneError.corrupt("source \(record.name) has no URL") }
        var fields = JSONObject()
        for (key, value) in record.config { fields[key] = value }
        fields["url"] = .string(url)
        let settings = try SourceRegistrar.mongoSettings(url: url, request: RegistrationFields(fields))
        let found = try await SourceRegistrar.sample(url: url, settings: settings)
        return SourceRegistrar.merged(current, found.model)
    }
}
