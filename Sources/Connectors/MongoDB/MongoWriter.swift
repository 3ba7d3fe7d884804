import Runtime
import Tenancy

/// Runs one write plan on a MongoDB source, on one client of its pool (the calling thread
/// blocks). The rows a PATCH or DELETE touches are read first (`_id`s and images), so a singular
/// request touching another number of rows, or a policy `check` a new image fails, is refused
/// before anything is written. Inserts are checked in process before they are sent; a rule that
/// reaches across a relation is checked by a query after the write, and a failed check, like a
/// failed batch on a standalone server, undoes what was written (inserted `_id`s deleted, updated
/// documents put back). What cannot be undone is reported with its `_id`s (500 MB341).
struct MongoWriter: Sendable {
    let plan: WritePlan
    let returnRows: Bool
    let publishRows: Bool
    let expecting: WrittenRows
    let maxTimeMS: Int32
    let source: String

    var entity: Entity { plan.target.entity }
    var collection: String { entity.name }

    func run(_ session: MongoSession) throws -> StatementResult {
        switch plan.kind {
        case .insert(let rows, let columns, let onConflict, _):
            return try insert(rows, columns: columns, onConflict: onConflict, session)
        case .update(let values, let columns):
            return try update(values, columns: columns, session)
        case .delete:
            return try delete(session)
        }
    }

    // MARK: - Inserts

    private func insert(_ rows: [JSONObject], columns: [String], onConflict: OnConflict?, _ session: MongoSession) throws -> StatementResult {
        var documents: [BSONDocument] = []
        for (index, row) in rows.enumerated() {
            let document = try document(row, columns: columns, index: index)
            guard document.encodedSize <= BSONDocument.maxStoredSize else { throw Self.tooLarge(index: index, size: document.encodedSize) }
            documents.append(document)
        }
        try expecting.check(documents.count)
        if let onConflict { return try upsert(documents, onConflict: onConflict, session) }
        try checkInProcess(documents, rule: plan.check)
        let ids = documents.compactMap { $0["_id"] }
        do {
            try session.command(["insert": .string(collection), "documents": .array(documents.map(BSON.document)), "ordered": .bool(true), "maxTimeMS": .int32(maxTimeMS)])
        } catch let error as MongoWriteError {
            // An ordered batch stops at its first failure: the documents before it are in.
            try undoInserts(Array(ids.prefix(error.index)), session)
            throw error
        }
        if let check = plan.check, ChangeAuthorizer.reachesRelation(check), try violations(ids, rule: check, session) > 0 {
            try undoInserts(ids, session)
            throw Self.checkViolation
        }
        return try result(ids, inserted: nil, before: nil, session)
    }

    /// A row as the document to insert: `_id` first (minted when absent and the field holds
    /// ObjectIds), then the row's fields in the request's order, each typed by its field. A
    /// column the row does not give is left out (it reads as null).
    private func document(_ row: JSONObject, columns: [String], index: Int) throws(RestError) -> BSONDocument {
        var document = BSONDocument()
        let idColumn = entity.column(named: "_id")
        if let given = row["_id"], given != .null {
            document.append("_id", try typed(given, column: "_id", pointer: "/\(index)/_id"))
        } else if idColumn == nil || idColumn?.nativeType == "objectId" || idColumn.map({ MongoValues.mixedTypes($0.nativeType)?.contains("objectId") ?? false }) == true {
            document.append("_id", .objectId(ObjectID.generate()))
        } else {
            throw RestError(
                status: 400, code: "MB336", message: "'_id' of '\(collection)' holds \(idColumn?.nativeType ?? "other") values and must be given",
                details: "row \(index)")
        }
        for name in columns where name != "_id" {
            guard let value = row[name] else { continue }
            document.append(name, try typed(value, column: name, pointer: "/\(index)/\(MongoValues.escapePointer(name))"))
        }
        return document
    }

    /// A body value as stored; documents inside it have their keys checked as they are built
    /// (`MongoValues.generic`).
    private func typed(_ value: JSONValue, column name: String, pointer: String) throws(RestError) -> BSON {
        try MongoValues.value(value, native: entity.column(named: name)?.nativeType ?? "mixed", column: name, pointer: pointer)
    }

    /// `on_conflict`: the rows meeting an existing document on the target fields update it
    /// (`merge`, under the update policy) or leave it (`ignore`); the others are inserted by an
    /// upsert on the same fields, so a document inserted meanwhile is met, not duplicated.
    private func upsert(_ documents: [BSONDocument], onConflict: OnConflict, _ session: MongoSession) throws -> StatementResult {
        let target: [String]
        let merge: Bool
        switch onConflict {
        case .merge(let fields): (target, merge) = (fields, true)
        case .ignore(let fields): (target, merge) = (fields, false)
        }
        guard entity.isUnique(target) else {
            throw RestError(
                status: 400, code: "MB338", message: "on_conflict needs fields with a unique index: \(target.joined(separator: ","))",
                hint: "create a unique index on them and refresh the source")
        }
        func key(_ document: BSONDocument) -> String { target.map { (document[$0] ?? .null).description }.joined(separator: "\u{0}") }
        func matchOf(_ document: BSONDocument) -> BSONDocument { BSONDocument(target.map { (key: $0, value: document[$0] ?? .null) }) }
        let existing = try session.aggregate(
            collection, pipeline: [.document(["$match": .document(["$or": .array(documents.map { .document(matchOf($0)) })])])], maxTimeMS: maxTimeMS)
        var found: [String: BSONDocument] = [:]
        for document in existing { found[key(document)] = document }
        var updates: [BSON] = []
        var updatedIDs: [BSON] = []
        var before: [BSONDocument] = []
        var fresh: [BSONDocument] = []
        let update = plan.conflictUpdate
        for document in documents {
            if let current = found[key(document)] {
                guard merge, let id = current["_id"] else { continue }
                if let rows = update?.rows, ChangeAuthorizer.evaluate(rows, MongoRows.image(current, entity: entity)) != true { continue }
                var set = BSONDocument()
                let columns = update?.columns ?? document.pairs.map(\.key)
                for (name, value) in document.pairs where name != "_id" && !target.contains(name) && columns.contains(name) { set.append(name, value) }
                for (name, value) in update?.presets ?? [] { set[name] = try typed(value, column: name, pointer: "/\(name)") }
                guard !set.isEmpty else { continue }
                var image = current
                for (name, value) in set.pairs { image[name] = value }
                if let check = update?.check, ChangeAuthorizer.evaluate(check, MongoRows.image(image, entity: entity)) != true { throw Self.checkViolation }
                updates.append(.document(["q": .document(["_id": id]), "u": .document(["$set": .document(set)])]))
                updatedIDs.append(id)
                before.append(current)
            } else {
                fresh.append(document)
            }
        }
        try checkInProcess(fresh, rule: plan.check)
        for document in fresh {
            updates.append(.document(["q": .document(matchOf(document)), "u": .document(["$setOnInsert": .document(document)]), "upsert": .bool(true)]))
        }
        var insertedIDs: [BSON] = []
        if !updates.isEmpty {
            let reply: BSONDocument
            do {
                reply = try session.command(["update": .string(collection), "updates": .array(updates), "ordered": .bool(true), "maxTimeMS": .int32(maxTimeMS)])
            } catch let error as MongoWriteError {
                try restore(Array(before.prefix(error.index)), session)
                throw error
            }
            if case .array(let upserted)? = reply["upserted"] {
                for case .document(let entry) in upserted { if let id = entry["_id"] { insertedIDs.append(id) } }
            }
        }
        return try result(updatedIDs + insertedIDs, inserted: Set(insertedIDs.map(\.description)), before: nil, session)
    }

    private func checkInProcess(_ documents: [BSONDocument], rule: RowRule?) throws {
        guard let rule, !ChangeAuthorizer.reachesRelation(rule) else { return }
        for document in documents where ChangeAuthorizer.evaluate(rule, MongoRows.image(document, entity: entity)) != true {
            throw Self.checkViolation
        }
    }

    static func tooLarge(index: Int, size: Int) -> RestError {
        RestError(
            status: 413, code: "MB340", message: "a document would be larger than MongoDB's 16 MiB limit",
            details: "row \(index) is \(size) bytes as BSON")
    }

    static let checkViolation = RestError(
        status: 403, code: "42501", message: "new row violates the policy check", details: "a row would be outside what the policy allows")

    // MARK: - Updates and deletes

    /// The documents a PATCH or DELETE touches, whole: filters, policy, order and limit.
    private func targets(_ session: MongoSession) throws -> [BSONDocument] {
        var renderer = MongoRenderer()
        var stages = try renderer.matchStages(plan.target)
        stages += try renderer.sortStages(plan.target)
        if let offset = plan.target.offset, offset > 0 { stages.append(.document(["$skip": .int32(Int32(clamping: offset))])) }
        if let limit = plan.target.limit { stages.append(.document(["$limit": .int32(Int32(clamping: max(0, limit)))])) }
        // The sort flags and policy lookups are not part of the document.
        let documents = try session.aggregate(collection, pipeline: stages, maxTimeMS: maxTimeMS)
        return documents.map { document in BSONDocument(document.pairs.filter { !$0.key.hasPrefix("_mb_") }) }
    }

    private func update(_ values: JSONObject, columns: [String], _ session: MongoSession) throws -> StatementResult {
        var set = BSONDocument()
        for name in columns where name != "_id" {
            set.append(name, try typed(values[name] ?? .null, column: name, pointer: "/\(MongoValues.escapePointer(name))"))
        }
        if columns.contains("_id") {
            throw RestError(status: 400, code: "MB336", message: "'_id' cannot be changed", hint: "insert a new document instead")
        }
        let documents = try targets(session)
        try expecting.check(documents.count)
        guard !set.isEmpty, !documents.isEmpty else { return try result([], inserted: nil, before: nil, session) }
        for (index, document) in documents.enumerated() {
            var image = document
            for (name, value) in set.pairs { image[name] = value }
            guard image.encodedSize <= BSONDocument.maxStoredSize else { throw Self.tooLarge(index: index, size: image.encodedSize) }
        }
        let ids = documents.compactMap { $0["_id"] }
        if let check = plan.check, !ChangeAuthorizer.reachesRelation(check) {
            for document in documents {
                var image = document
                for (name, value) in set.pairs { image[name] = value }
                if ChangeAuthorizer.evaluate(check, MongoRows.image(image, entity: entity)) != true { throw Self.checkViolation }
            }
        }
        try session.command([
            "update": .string(collection),
            "updates": .array([.document(["q": .document(["_id": .document(["$in": .array(ids)])]), "u": .document(["$set": .document(set)]), "multi": .bool(true)])]),
            "ordered": .bool(true), "maxTimeMS": .int32(maxTimeMS),
        ])
        if let check = plan.check, ChangeAuthorizer.reachesRelation(check), try violations(ids, rule: check, session) > 0 {
            try restore(documents, session)
            throw Self.checkViolation
        }
        return try result(ids, inserted: nil, before: nil, session)
    }

    private func delete(_ session: MongoSession) throws -> StatementResult {
        let documents = try targets(session)
        try expecting.check(documents.count)
        let ids = documents.compactMap { $0["_id"] }
        guard !ids.isEmpty else { return try result([], inserted: nil, before: nil, session) }
        // What is answered and published is read before the documents are gone.
        let answer = try result(ids, inserted: nil, before: documents, session)
        try session.command([
            "delete": .string(collection), "deletes": .array([.document(["q": .document(["_id": .document(["$in": .array(ids)])]), "limit": .int32(0)])]),
            "ordered": .bool(true), "maxTimeMS": .int32(maxTimeMS),
        ])
        return answer
    }

    // MARK: - After the write

    /// The count, `return=representation` through the returning plan (columns, embeds, the
    /// select policy), and every field of the written documents for realtime.
    private func result(_ ids: [BSON], inserted: Set<String>?, before: [BSONDocument]?, _ session: MongoSession) throws -> StatementResult {
        var body: String?
        if returnRows {
            if ids.isEmpty {
                body = "[]"
            } else {
                var renderer = MongoRenderer()
                let documents = try session.aggregate(collection, pipeline: try renderer.pipeline(plan.returning, only: ids), maxTimeMS: maxTimeMS)
                body = try MongoRows.array(ordered(documents, by: ids), plan: plan.returning)
            }
        }
        var changes: String?
        if publishRows, !ids.isEmpty {
            let documents = try before ?? session.aggregate(
                collection, pipeline: [.document(["$match": .document(["_id": .document(["$in": .array(ids)])])])], maxTimeMS: maxTimeMS)
            let images = ordered(documents, by: ids).map { document -> JSONValue in
                var image = MongoRows.image(document, entity: entity)
                if let inserted, let id = document["_id"] { image["_mb_inserted"] = .bool(inserted.contains(id.description)) }
                return .object(image)
            }
            changes = JSONValue.array(images).jsonString
        }
        return StatementResult(body: body, count: ids.count, total: nil, changes: changes)
    }

    /// Documents in the order of the `_id`s written (the order the request gave its rows).
    private func ordered(_ documents: [BSONDocument], by ids: [BSON]) -> [BSONDocument] {
        var position: [String: Int] = [:]
        for (index, id) in ids.enumerated() where position[id.description] == nil { position[id.description] = index }
        return documents.sorted { (position[$0["_id"]?.description ?? ""] ?? .max) < (position[$1["_id"]?.description ?? ""] ?? .max) }
    }

    /// Written documents a relation-reaching `check` rejects.
    private func violations(_ ids: [BSON], rule: RowRule, _ session: MongoSession) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        var renderer = MongoRenderer()
        let (stages, match) = try renderer.rule(rule, entity: entity)
        let pipeline: [BSON] = [.document(["$match": .document(["_id": .document(["$in": .array(ids)])])])] + stages + [
            .document(["$match": .document(["$nor": .array([.document(match)])])]), .document(["$count": .string("n")]),
        ]
        return Int(try session.aggregate(collection, pipeline: pipeline, maxTimeMS: maxTimeMS).first?["n"].flatMap(MongoSession.integer) ?? 0)
    }

    private func undoInserts(_ ids: [BSON], _ session: MongoSession) throws {
        guard !ids.isEmpty else { return }
        do {
            try session.command(["delete": .string(collection), "deletes": .array([.document(["q": .document(["_id": .document(["$in": .array(ids)])]), "limit": .int32(0)])])])
        } catch {
            throw Self.notUndone(ids, error)
        }
    }

    /// Puts documents back as they were before an update that must not stand.
    private func restore(_ documents: [BSONDocument], _ session: MongoSession) throws {
        guard !documents.isEmpty else { return }
        let updates = documents.compactMap { document -> BSON? in
            guard let id = document["_id"] else { return nil }
            return .document(["q": .document(["_id": id]), "u": .document(document)])
        }
        do {
            try session.command(["update": .string(collection), "updates": .array(updates), "ordered": .bool(false)])
        } catch {
            throw Self.notUndone(documents.compactMap { $0["_id"] }, error)
        }
    }

    static func notUndone(_ ids: [BSON], _ error: any Error) -> RestError {
        RestError(
            status: 500, code: "MB341", message: "a multi-document write failed part-way and could not be undone on this server",
            details: "documents left written: " + ids.map { MongoJSON.extended($0) }.joined(separator: ", "), hint: "\(error)")
    }
}

extension BSON: CustomStringConvertible {
    /// The value's JSON, as a key for matching `_id`s.
    public var description: String { MongoJSON.extended(self) }
}
