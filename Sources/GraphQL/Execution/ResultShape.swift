import Foundation
import Runtime

/// How the rows a plan answers (JSON objects keyed by the plan's internal aliases) become the
/// GraphQL answer: keys, nesting, connections, cursors and pg_graphql's scalar encodings.
indirect enum NodeItem: Sendable {
    case typename(key: String, value: String)
    case column(key: String, alias: String, format: ValueFormat)
    case nodeID(key: String, entity: EntityNameParts, aliases: [String])
    case toOne(key: String, alias: String, node: [NodeItem])
    case connection(key: String, alias: String, shape: ConnectionShape)
}

struct EntityNameParts: Sendable {
    var schema: String
    var name: String
}

/// pg_graphql's encodings: BigInt and BigFloat as strings, JSON as its text.
indirect enum ValueFormat: Sendable {
    case plain
    case text
    case json
    case list(ValueFormat)
    /// A renamed enum's SQL labels as their GraphQL values.
    case enumeration([String: String])

    func apply(_ value: JSONValue) -> JSONValue {
        if value == .null { return .null }
        switch self {
        case .plain: return value
        case .text:
            switch value {
            case .integer(let number): return .string(String(number))
            case .number(let number):
                return .string(number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number))
            default: return .string(value.stringValue ?? value.jsonString)
            }
        case .json: return .string(value.jsonString)
        case .list(let inner): return .array((value.arrayValue ?? []).map(inner.apply))
        case .enumeration(let values): return value.stringValue.flatMap { values[$0] }.map(JSONValue.string) ?? value
        }
    }
}

struct ConnectionShape: Sendable {
    enum Item: Sendable {
        case typename(key: String, value: String)
        case totalCount(key: String)
        case edges(key: String, [EdgeItem])
        case pageInfo(key: String, [PageInfoItem])
    }

    enum EdgeItem: Sendable {
        case typename(key: String, value: String)
        case cursor(key: String)
        case node(key: String, [NodeItem])
    }

    enum PageInfoItem: Sendable {
        case typename(key: String, value: String)
        case hasNextPage(key: String)
        case hasPreviousPage(key: String)
        case startCursor(key: String)
        case endCursor(key: String)
    }

    var items: [Item]
    /// Rows on the page; one more is fetched to tell whether there is a next page.
    var pageSize: Int
    /// `last`: the rows were read in reverse order and are turned back.
    var reversed: Bool
    /// Whether rows come before this page (an `after` cursor or an offset).
    var hasPrevious: Bool
    /// With `before`: rows come after this page.
    var hasNextWhenReversed: Bool
    /// The aliases of the order values and key a cursor holds.
    var cursorAliases: [String]
    /// For a nested collection: the alias of the embed counting its rows (`totalCount`).
    var countAlias: String?

    /// Writes the connection's JSON for the rows read (one more than the page, when there is a
    /// next page) straight into `out`: no answer tree is built on the way.
    func write(rows fetched: [JSONValue], total: Int?, into out: inout [UInt8]) {
        let more = fetched.count > pageSize
        var rows = Array(fetched.prefix(pageSize))
        if reversed { rows.reverse() }
        let hasNext = reversed ? hasNextWhenReversed : more
        let hasPreviousPage = reversed ? more : hasPrevious
        let writer = AnswerWriter()
        out.append(UInt8(ascii: "{"))
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            switch item {
            case .typename(let key, let value): writer.pair(key, .string(value), into: &out)
            case .totalCount(let key): writer.pair(key, .integer(Int64(total ?? rows.count)), into: &out)
            case .edges(let key, let edgeItems):
                writer.key(key, into: &out)
                out.append(UInt8(ascii: "["))
                for (position, row) in rows.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    let object = row.objectValue ?? [:]
                    out.append(UInt8(ascii: "{"))
                    for (edgeIndex, edgeItem) in edgeItems.enumerated() {
                        if edgeIndex > 0 { out.append(UInt8(ascii: ",")) }
                        switch edgeItem {
                        case .typename(let key, let value): writer.pair(key, .string(value), into: &out)
                        case .cursor(let key): writer.pair(key, .string(cursor(object)), into: &out)
                        case .node(let key, let node):
                            writer.key(key, into: &out)
                            Self.writeNode(object, node, into: &out)
                        }
                    }
                    out.append(UInt8(ascii: "}"))
                }
                out.append(UInt8(ascii: "]"))
            case .pageInfo(let key, let pageItems):
                writer.key(key, into: &out)
                out.append(UInt8(ascii: "{"))
                for (pageIndex, pageItem) in pageItems.enumerated() {
                    if pageIndex > 0 { out.append(UInt8(ascii: ",")) }
                    switch pageItem {
                    case .typename(let key, let value): writer.pair(key, .string(value), into: &out)
                    case .hasNextPage(let key): writer.pair(key, .bool(hasNext), into: &out)
                    case .hasPreviousPage(let key): writer.pair(key, .bool(hasPreviousPage), into: &out)
                    case .startCursor(let key): writer.pair(key, rows.first.map { .string(cursor($0.objectValue ?? [:])) } ?? .null, into: &out)
                    case .endCursor(let key): writer.pair(key, rows.last.map { .string(cursor($0.objectValue ?? [:])) } ?? .null, into: &out)
                    }
                }
                out.append(UInt8(ascii: "}"))
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    func cursor(_ row: JSONObject) -> String {
        Data(JSONValue.array(cursorAliases.map { row[$0] ?? .null }).encoded()).base64EncodedString()
    }

    /// Writes a row's object as the selection asks for it (keys in selection order).
    static func writeNode(_ row: JSONObject, _ items: [NodeItem], into out: inout [UInt8]) {
        let writer = AnswerWriter()
        out.append(UInt8(ascii: "{"))
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            switch item {
            case .typename(let key, let value): writer.pair(key, .string(value), into: &out)
            case .column(let key, let alias, let format): writer.pair(key, format.apply(row[alias] ?? .null), into: &out)
            case .nodeID(let key, let entity, let aliases):
                let parts: [JSONValue] = [.string(entity.schema), .string(entity.name)] + aliases.map { row[$0] ?? .null }
                writer.pair(key, .string(Data(JSONValue.array(parts).encoded()).base64EncodedString()), into: &out)
            case .toOne(let key, let alias, let node):
                writer.key(key, into: &out)
                if let object = row[alias]?.objectValue {
                    writeNode(object, node, into: &out)
                } else {
                    out.append(contentsOf: "null".utf8)
                }
            case .connection(let key, let alias, let shape):
                writer.key(key, into: &out)
                let rows = row[alias]?.arrayValue ?? []
                let total = shape.countAlias.map { row[$0]?.arrayValue?.count ?? 0 }
                shape.write(rows: rows, total: total, into: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
    }
}

/// Writes `"key":value` pairs of an answer.
struct AnswerWriter {
    func key(_ key: String, into out: inout [UInt8]) {
        JSONValue.writeString(key, into: &out)
        out.append(UInt8(ascii: ":"))
    }

    func pair(_ key: String, _ value: JSONValue, into out: inout [UInt8]) {
        self.key(key, into: &out)
        value.write(into: &out)
    }
}
