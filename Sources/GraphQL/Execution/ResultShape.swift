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

    func answer(rows fetched: [JSONValue], total: Int?) -> JSONValue {
        let more = fetched.count > pageSize
        var rows = Array(fetched.prefix(pageSize))
        if reversed { rows.reverse() }
        let hasNext = reversed ? hasNextWhenReversed : more
        let hasPreviousPage = reversed ? more : hasPrevious
        var out = JSONObject()
        for item in items {
            switch item {
            case .typename(let key, let value): out[key] = .string(value)
            case .totalCount(let key): out[key] = .integer(Int64(total ?? rows.count))
            case .edges(let key, let edgeItems):
                out[key] = .array(rows.map { row in
                    let object = row.objectValue ?? [:]
                    var edge = JSONObject()
                    for edgeItem in edgeItems {
                        switch edgeItem {
                        case .typename(let key, let value): edge[key] = .string(value)
                        case .cursor(let key): edge[key] = .string(cursor(object))
                        case .node(let key, let node): edge[key] = Self.node(object, node)
                        }
                    }
                    return .object(edge)
                })
            case .pageInfo(let key, let pageItems):
                var info = JSONObject()
                for pageItem in pageItems {
                    switch pageItem {
                    case .typename(let key, let value): info[key] = .string(value)
                    case .hasNextPage(let key): info[key] = .bool(hasNext)
                    case .hasPreviousPage(let key): info[key] = .bool(hasPreviousPage)
                    case .startCursor(let key): info[key] = rows.first.map { .string(cursor($0.objectValue ?? [:])) } ?? .null
                    case .endCursor(let key): info[key] = rows.last.map { .string(cursor($0.objectValue ?? [:])) } ?? .null
                    }
                }
                out[key] = .object(info)
            }
        }
        return .object(out)
    }

    func cursor(_ row: JSONObject) -> String {
        Data(JSONValue.array(cursorAliases.map { row[$0] ?? .null }).encoded()).base64EncodedString()
    }

    static func node(_ row: JSONObject, _ items: [NodeItem]) -> JSONValue {
        var out = JSONObject()
        for item in items {
            switch item {
            case .typename(let key, let value): out[key] = .string(value)
            case .column(let key, let alias, let format): out[key] = format.apply(row[alias] ?? .null)
            case .nodeID(let key, let entity, let aliases):
                let parts: [JSONValue] = [.string(entity.schema), .string(entity.name)] + aliases.map { row[$0] ?? .null }
                out[key] = .string(Data(JSONValue.array(parts).encoded()).base64EncodedString())
            case .toOne(let key, let alias, let node):
                out[key] = (row[alias]?.objectValue).map { Self.node($0, node) } ?? .null
            case .connection(let key, let alias, let shape):
                let rows = row[alias]?.arrayValue ?? []
                let total = shape.countAlias.map { row[$0]?.arrayValue?.count ?? 0 }
                out[key] = shape.answer(rows: rows, total: total)
            }
        }
        return .object(out)
    }
}
