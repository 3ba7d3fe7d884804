import Foundation
import Runtime

/// A search request as Meilisearch's `POST /indexes/{uid}/search` takes it (or the same names as
/// query parameters of `GET`), checked field by field.
public struct SearchQuery: Sendable {
    public enum MatchingStrategy: String, Sendable { case last, all, frequency }

    public var q: String?
    public var offset = 0
    public var limit = 20
    public var page: Int?
    public var hitsPerPage: Int?
    public var filter: FilterExpression?
    public var sort: [(attribute: String, ascending: Bool)] = []
    public var facets: [String] = []
    public var attributesToRetrieve: [String]?
    public var attributesToHighlight: [String] = []
    public var attributesToCrop: [(attribute: String, length: Int?)] = []
    public var cropLength = 10
    public var cropMarker = "…"
    public var highlightPreTag = "<em>"
    public var highlightPostTag = "</em>"
    public var matchingStrategy = MatchingStrategy.last
    public var showRankingScore = false
    public var showMatchesPosition = false
    public var attributesToSearchOn: [String]?
    public var distinct: String?

    public init() {}

    static let known: Set<String> = [
        "q", "offset", "limit", "page", "hitsPerPage", "filter", "sort", "facets", "attributesToRetrieve", "attributesToHighlight",
        "attributesToCrop", "cropLength", "cropMarker", "highlightPreTag", "highlightPostTag", "matchingStrategy", "showRankingScore",
        "showMatchesPosition", "attributesToSearchOn", "distinct", "showRankingScoreDetails", "rankingScoreThreshold", "vector", "hybrid",
        "retrieveVectors", "locales", "indexUid", "federationOptions",
    ]

    /// Reads a JSON body; `indexUid` is allowed (multi-search) and ignored here.
    public init(json: JSONObject) throws(SearchError) {
        for name in json.keys where !Self.known.contains(name) {
            throw SearchError.badRequest("bad_request", "Unknown field `\(name)`: expected one of `q`, `offset`, `limit`, `page`, `hitsPerPage`, `filter`, `sort`, `facets`, `attributesToRetrieve`, `attributesToHighlight`, `attributesToCrop`, `cropLength`, `cropMarker`, `highlightPreTag`, `highlightPostTag`, `matchingStrategy`, `showRankingScore`, `showMatchesPosition`, `attributesToSearchOn`, `distinct`")
        }
        func integer(_ name: String) throws(SearchError) -> Int? {
            guard let value = json[name], value != .null else { return nil }
            guard let number = value.intValue, number >= 0, number <= 1_000_000_000 else {
                throw SearchError.badRequest("invalid_search_\(Self.snake(name))", "Invalid value type at `.\(name)`: expected a positive integer, but found \(value.typeName): `\(String(decoding: value.encoded(), as: UTF8.self))`")
            }
            return Int(number)
        }
        func strings(_ name: String) throws(SearchError) -> [String]? {
            guard let value = json[name], value != .null else { return nil }
            if case .string(let text) = value { return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            guard let items = value.arrayValue, let texts = Optional(items.compactMap(\.stringValue)), texts.count == items.count else {
                throw SearchError.badRequest("invalid_search_\(Self.snake(name))", "Invalid value type at `.\(name)`: expected an array of strings, but found \(value.typeName)")
            }
            return texts
        }
        func string(_ name: String) throws(SearchError) -> String? {
            guard let value = json[name], value != .null else { return nil }
            guard let text = value.stringValue else {
                throw SearchError.badRequest("invalid_search_\(Self.snake(name))", "Invalid value type at `.\(name)`: expected a string, but found \(value.typeName)")
            }
            return text
        }
        func flag(_ name: String) throws(SearchError) -> Bool {
            guard let value = json[name], value != .null else { return false }
            guard let flag = value.boolValue else {
                throw SearchError.badRequest("invalid_search_\(Self.snake(name))", "Invalid value type at `.\(name)`: expected a boolean, but found \(value.typeName)")
            }
            return flag
        }
        q = try string("q")
        offset = try integer("offset") ?? 0
        limit = try integer("limit") ?? 20
        page = try integer("page")
        hitsPerPage = try integer("hitsPerPage")
        filter = try FilterParser.parse(json["filter"])
        for entry in try strings("sort") ?? [] {
            guard let rule = IndexSettings.customRule(entry) else {
                throw SearchError.badSort("Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found `\(entry)`.")
            }
            sort.append(rule)
        }
        facets = try strings("facets") ?? []
        attributesToRetrieve = try strings("attributesToRetrieve")
        attributesToHighlight = try strings("attributesToHighlight") ?? []
        cropLength = try integer("cropLength") ?? 10
        for entry in try strings("attributesToCrop") ?? [] {
            if let colon = entry.lastIndex(of: ":"), let length = Int(entry[entry.index(after: colon)...]) {
                guard (0...1_000_000).contains(length) else {
                    throw SearchError.badRequest("invalid_search_attributes_to_crop", "Invalid crop length in `\(entry)`: expected 0 to 1000000 words")
                }
                attributesToCrop.append((String(entry[..<colon]), length))
            } else {
                attributesToCrop.append((entry, nil))
            }
        }
        // Copied once per matched word of every hit: bounded, so one request cannot make the
        // answer gigabytes.
        func tag(_ name: String, _ fallback: String) throws(SearchError) -> String {
            let value = try string(name) ?? fallback
            guard value.utf8.count <= 1_024 else {
                throw SearchError.badRequest("invalid_search_\(Self.snake(name))", "`\(name)` is longer than 1024 bytes")
            }
            return value
        }
        cropMarker = try tag("cropMarker", "…")
        highlightPreTag = try tag("highlightPreTag", "<em>")
        highlightPostTag = try tag("highlightPostTag", "</em>")
        if let strategy = try string("matchingStrategy") {
            guard let parsed = MatchingStrategy(rawValue: strategy) else {
                throw SearchError.badRequest("invalid_search_matching_strategy", "Unknown value `\(strategy)` at `.matchingStrategy`: expected one of `last`, `all`, `frequency`")
            }
            matchingStrategy = parsed
        }
        showRankingScore = try flag("showRankingScore")
        showMatchesPosition = try flag("showMatchesPosition")
        attributesToSearchOn = try strings("attributesToSearchOn")
        distinct = try string("distinct")
    }

    /// A `GET …/search` query string: the same names, lists comma-separated.
    public init(queryItems: [(String, String)]) throws(SearchError) {
        var json = JSONObject()
        let numbers: Set<String> = ["offset", "limit", "page", "hitsPerPage", "cropLength"]
        let flags: Set<String> = ["showRankingScore", "showMatchesPosition"]
        for (name, value) in queryItems {
            if numbers.contains(name) {
                guard let number = Int64(value) else {
                    throw SearchError.badRequest("invalid_search_\(Self.snake(name))", "Invalid value in parameter `\(name)`: could not parse `\(value)` as a positive integer")
                }
                json[name] = .integer(number)
            } else if flags.contains(name) {
                json[name] = .bool(value == "true")
            } else {
                json[name] = .string(value)
            }
        }
        try self.init(json: json)
    }

    static func snake(_ name: String) -> String {
        name.reduce(into: "") { result, character in
            if character.isUppercase { result += "_" + character.lowercased() } else { result.append(character) }
        }
    }

    /// Whether the request pages by `page`/`hitsPerPage` (else `offset`/`limit`).
    public var paged: Bool { page != nil || hitsPerPage != nil }

    /// The slice of `total` ranked documents this request shows; nothing past `maxTotalHits`.
    public func window(total: Int, maxTotalHits: Int) -> Range<Int> {
        let capped = min(total, maxTotalHits)
        if paged {
            let perPage = hitsPerPage ?? 20
            let start = min((max(page ?? 1, 1) - 1) * perPage, capped)
            return page == 0 ? start..<start : start..<min(start + perPage, capped)
        }
        let start = min(offset, capped)
        return start..<min(start + limit, capped)
    }

    /// The answer's paging fields for `total` matches: `limit/offset/estimatedTotalHits`, or
    /// `hitsPerPage/page/totalPages/totalHits` — every total exact up to `maxTotalHits`.
    public func pagingFields(total: Int, maxTotalHits: Int) -> JSONObject {
        let capped = min(total, maxTotalHits)
        guard paged else {
            return ["limit": .integer(Int64(limit)), "offset": .integer(Int64(offset)), "estimatedTotalHits": .integer(Int64(capped))]
        }
        let perPage = hitsPerPage ?? 20
        return [
            "hitsPerPage": .integer(Int64(perPage)), "page": .integer(Int64(page ?? 1)),
            "totalPages": .integer(perPage == 0 ? 0 : Int64((capped + perPage - 1) / perPage)), "totalHits": .integer(Int64(capped)),
        ]
    }

    /// Every attribute the request names outside `q` (checked against what the caller may read).
    public var namedAttributes: [String] {
        var names = (filter?.attributes ?? []) + sort.map(\.attribute) + facets + attributesToHighlight + attributesToCrop.map(\.attribute)
        names += (attributesToRetrieve ?? []) + (attributesToSearchOn ?? [])
        if let distinct { names.append(distinct) }
        return names.filter { $0 != "*" }
    }
}
