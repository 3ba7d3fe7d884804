import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

extension RestAPI {
    /// POST (insert, or upsert with `Prefer: resolution`) and PUT (upsert of one row by its key).
    func insert(_ request: Request, context: EdgeContext, target: Target, entity: String, query: RestQuery, prefer: Preferences) async throws -> Response {
        let rows = try await bodyRows(request, single: request.method == .put)
        var onConflict: OnConflict?
        if request.method == .put {
            onConflict = .merge(target: try putTarget(target, entity: entity, query: query, row: rows[0]))
        } else if let resolution = prefer.resolution {
            let entityModel = try Self.rest { try target.planner.entity(entity) }
            let conflictTarget = query.onConflict ?? entityModel.primaryKey
            guard !conflictTarget.isEmpty else {
                throw APIError(status: .badRequest, code: "PGRST100", message: "upsert needs on_conflict or a primary key")
            }
            onConflict = resolution == .mergeDuplicates ? .merge(target: conflictTarget) : .ignore(target: conflictTarget)
        }
        if prefer.missingDefault && rows.count * Set(rows.flatMap(\.keys)).count > 30_000 {
            throw APIError(status: .contentTooLarge, code: "MB105", message: "too many values for missing=default in one request; send smaller batches")
        }
        if query.columns == nil, !prefer.missingDefault, rows.count > 1, Set(rows.map { Set($0.keys) }).count > 1 {
            throw APIError(status: .badRequest, code: "PGRST102", message: "All object keys must match")
        }
        let representation = prefer.returning == .representation
        let returnsRows = representation || prefer.returning == .headersOnly
        let plan = try Self.rest {
            try target.planner.insert(
                entity, rows: rows, query: query, onConflict: onConflict, missingDefault: prefer.missingDefault, returnsRows: returnsRows)
        }
        let result = try await write(plan, .insert, returnRows: returnsRows, target: target, request: request, prefer: prefer, context: context)
        var headers = HTTPFields()
        if let applied = prefer.appliedForWrite(resolution: request.method == .post, missing: true) { headers[.preferenceApplied] = applied }
        headers[.contentRange] = "*/*"
        let status: HTTPResponse.Status = request.method == .put ? (representation ? .ok : .noContent) : .created
        if prefer.returning == .headersOnly, let location = location(entity: plan.target.entity, body: result.body) {
            headers[.location] = location
        }
        guard representation else { return Response(status: request.method == .put ? .noContent : status, headers: headers) }
        return try bodyResponse(result.body ?? "[]", status: status, headers: headers, request: request, rows: result.count)
    }

    /// PATCH: the filtered rows take the body's values.
    func update(_ request: Request, context: EdgeContext, target: Target, entity: String, query: RestQuery, prefer: Preferences) async throws -> Response {
        let rows = try await bodyRows(request, single: true)
        let representation = prefer.returning == .representation
        let plan = try Self.rest { try target.planner.update(entity, values: rows[0], query: query, returnsRows: representation) }
        let result = try await write(plan, .update, returnRows: representation, target: target, request: request, prefer: prefer, context: context)
        return try writeResponse(result, representation: representation, request: request, prefer: prefer)
    }

    /// DELETE of the filtered rows.
    func delete(_ request: Request, context: EdgeContext, target: Target, entity: String, query: RestQuery, prefer: Preferences) async throws -> Response {
        let representation = prefer.returning == .representation
        let plan = try Self.rest { try target.planner.delete(entity, query: query, returnsRows: representation) }
        let result = try await write(plan, .delete, returnRows: representation, target: target, request: request, prefer: prefer, context: context)
        return try writeResponse(result, representation: representation, request: request, prefer: prefer)
    }

    /// Runs a write, drops the source's cached reads, and — when the tenant's realtime hub has
    /// subscribers to this source whose changes the database cannot hand over — has the statement
    /// answer its rows too and publishes them.
    func write(
        _ plan: WritePlan, _ operation: RestWriteChanges.Operation, returnRows: Bool, target: Target, request: Request,
        prefer: Preferences, context: EdgeContext
    ) async throws -> StatementResult {
        let hub = context.tenant?.realtime.hub
        let publishes = hub?.uncaptured.contains(target.source.name) ?? false
        let rows: WrittenRows = Self.wantsObject(request) ? .exactlyOne : .any
        let result = try await Self.rest { () async throws -> StatementResult in
            try await target.source.write(plan, returnRows: returnRows, publishRows: publishes, rollback: prefer.rollback, expecting: rows)
        }
        await context.tenant?.cache.dropReads(of: target.source.name)
        if publishes, let hub, !prefer.rollback, let rows = result.changes {
            hub.publishWrites(source: target.source.name, entity: plan.target.entity, operation: operation, rows: rows)
        }
        return result
    }

    func bodyRows(_ request: Request, single: Bool) async throws -> [JSONObject] {
        var body = request.body
        let buffer = try await body.collect(upTo: .max)
        guard buffer.readableBytes > 0 else { throw APIError.invalidJSON("the body is empty") }
        let value: JSONValue
        do { value = try JSONValue.parse(buffer.readableBytesView) } catch { throw APIError.invalidJSON("\(error)") }
        switch value {
        case .object(let object): return [object]
        case .array(let items) where !single:
            let objects = items.compactMap(\.objectValue)
            guard objects.count == items.count, !objects.isEmpty else {
                throw APIError.invalidJSON("expected a JSON object or a non-empty array of objects")
            }
            return objects
        default:
            throw APIError.invalidJSON(single ? "expected a JSON object" : "expected a JSON object or an array of objects")
        }
    }

    /// PUT is an upsert of exactly the row its primary-key filters name.
    func putTarget(_ target: Target, entity: String, query: RestQuery, row: JSONObject) throws -> [String] {
        let model = try Self.rest { try target.planner.entity(entity) }
        let pk = model.primaryKey
        var filtered: [String: String] = [:]
        for condition in query.conditions[[]] ?? [] {
            if case .filter(let filter) = condition, filter.op == .eq, !filter.negated, filter.field.path.isEmpty, case .scalar(let value) = filter.value {
                filtered[filter.field.name] = value
            }
        }
        guard !pk.isEmpty, Set(filtered.keys) == Set(pk) else {
            throw APIError(status: .methodNotAllowed, code: "PGRST105", message: "PUT needs eq filters on every primary key column (\(pk.joined(separator: ", ")))")
        }
        for column in pk {
            let given = row[column].map { $0.stringValue ?? $0.jsonString }
            guard given == filtered[column] else {
                throw APIError(status: .badRequest, code: "PGRST115", message: "Payload values do not match URL in primary key column(s)")
            }
        }
        return pk
    }

    func location(entity: Entity, body: String?) -> String? {
        guard !entity.primaryKey.isEmpty, let body, let row = try? JSONValue.parse(Array(body.utf8)).arrayValue?.first else { return nil }
        let parts = entity.primaryKey.compactMap { column -> String? in
            guard let value = row[column] else { return nil }
            let text = value.stringValue ?? value.jsonString
            return "\(column)=eq.\(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text)"
        }
        return "/\(entity.name)?" + parts.joined(separator: "&")
    }
}
