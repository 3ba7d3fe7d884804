import Runtime

/// Documents as the REST API answers them: each row with the plan's columns in order (aliases,
/// JSON paths, casts) then its embeds; a field a document lacks reads as `null`, so every row
/// keeps the model's shape.
enum MongoRows {
    static func array(_ documents: [BSONDocument], plan: ReadPlan) throws(RestError) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(documents.count * 128 + 2)
        for (index, document) in documents.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            try row(document, plan: plan, into: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    static func row(_ document: BSONDocument, plan: ReadPlan, into out: inout [UInt8]) throws(RestError) {
        out.append(UInt8(ascii: "{"))
        var first = true
        func key(_ name: String) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            MongoJSON.writeString(name, into: &out)
            out.append(UInt8(ascii: ":"))
        }
        for column in plan.columns {
            key(column.outputName)
            var value = self.value(of: column.field, in: document)
            if column.field.yieldsText { value = MongoJSON.text(value).map(BSON.string) ?? .null }
            if let cast = column.cast { value = try self.cast(value, to: cast) }
            MongoJSON.write(value, into: &out)
        }
        for (index, embed) in plan.embeds.enumerated() {
            key(embed.outputName)
            var children: [BSONDocument] = []
            if case .array(let items)? = document[MongoRenderer.embedKey(index)] {
                for case .document(let child) in items { children.append(child) }
            }
            if embed.relation.isToOne {
                if let child = children.first { try row(child, plan: embed.plan, into: &out) } else { out += Array("null".utf8) }
            } else {
                out.append(UInt8(ascii: "["))
                for (position, child) in children.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    try row(child, plan: embed.plan, into: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A column, or the value at its JSON path (keys into documents, indexes into arrays).
    static func value(of field: Field, in document: BSONDocument) -> BSON {
        var current = document[field.name] ?? .null
        for step in field.path {
            let key: String
            switch step {
            case .json(let name), .text(let name): key = name
            }
            switch current {
            case .document(let inner): current = inner[key] ?? .null
            case .array(let items):
                guard let index = Int(key), items.indices.contains(index) else { return .null }
                current = items[index]
            default: return .null
            }
        }
        return current
    }

    /// `column::type` in `select`.
    static func cast(_ value: BSON, to type: String) throws(RestError) -> BSON {
        if case .null = value { return .null }
        switch type.lowercased() {
        case "text", "varchar", "character varying":
            return MongoJSON.text(value).map(BSON.string) ?? .null
        case "int", "integer", "int4", "bigint", "int8", "smallint", "int2":
            switch value {
            case .int32, .int64: return value
            case .double(let number): return Int64(exactly: number.rounded()).map(BSON.int64) ?? .null
            case .decimal128(let text), .string(let text):
                if let number = Int64(text) { return .int64(number) }
                return Double(text).flatMap { Int64(exactly: $0.rounded()) }.map(BSON.int64) ?? .null
            case .bool(let flag): return .int32(flag ? 1 : 0)
            default: return .null
            }
        case "numeric", "real", "float", "float4", "float8", "double precision", "decimal":
            switch value {
            case .int32(let number): return .double(Double(number))
            case .int64(let number): return .double(Double(number))
            case .double, .decimal128: return value
            case .string(let text): return Double(text).map(BSON.double) ?? .null
            default: return .null
            }
        case "json", "jsonb":
            return value
        case "boolean", "bool":
            switch value {
            case .bool: return value
            case .string(let text): return text == "true" ? .bool(true) : text == "false" ? .bool(false) : .null
            case .int32(let number): return .bool(number != 0)
            case .int64(let number): return .bool(number != 0)
            default: return .null
            }
        default:
            throw RestError(status: 400, code: "MB337", message: "the cast '::\(type)' is not available on a MongoDB source")
        }
    }

    /// Every column of a document, for realtime images and policy checks.
    static func image(_ document: BSONDocument, entity: Entity) -> JSONObject {
        var object = JSONObject()
        for column in entity.columns { object[column.name] = MongoJSON.json(document[column.name] ?? .null) }
        return object
    }
}
