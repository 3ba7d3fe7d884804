import Runtime

/// An index's settings, as Meilisearch names them. The ones the engine acts on are typed here; the
/// others Meilisearch has (separator tokens, proximity precision, …) are accepted, kept and
/// returned unchanged so a client's round trip loses nothing.
public struct IndexSettings: Sendable, Equatable {
    public var displayedAttributes: [String] = ["*"]
    public var searchableAttributes: [String] = ["*"]
    public var filterableAttributes: [String] = []
    public var sortableAttributes: [String] = []
    public var rankingRules: [String] = IndexSettings.defaultRankingRules
    public var stopWords: [String] = []
    public var synonyms: [String: [String]] = [:]
    public var distinctAttribute: String?
    public var typoTolerance = TypoTolerance()
    public var maxValuesPerFacet = 100
    public var maxTotalHits = 1_000
    /// Accepted settings the engine does not act on, kept as given.
    public var passthrough: JSONObject = [:]

    public struct TypoTolerance: Sendable, Equatable {
        public var enabled = true
        public var oneTypo = 5
        public var twoTypos = 9
        public var disableOnWords: [String] = []
        public var disableOnAttributes: [String] = []
        public var disableOnNumbers = false
    }

    public static let defaultRankingRules = ["words", "typo", "proximity", "attribute", "sort", "exactness"]
    static let builtInRules: Set<String> = ["words", "typo", "proximity", "attribute", "attributeRank", "wordPosition", "sort", "exactness"]
    static let passthroughNames: Set<String> = [
        "nonSeparatorTokens", "separatorTokens", "dictionary", "proximityPrecision", "searchCutoffMs", "localizedAttributes", "facetSearch",
        "prefixSearch", "embedders",
    ]

    /// Settings names in URLs (`/settings/ranking-rules`) and in bodies (`rankingRules`).
    public static let routeNames: [String: String] = [
        "displayed-attributes": "displayedAttributes", "searchable-attributes": "searchableAttributes",
        "filterable-attributes": "filterableAttributes", "sortable-attributes": "sortableAttributes", "ranking-rules": "rankingRules",
        "stop-words": "stopWords", "synonyms": "synonyms", "distinct-attribute": "distinctAttribute", "typo-tolerance": "typoTolerance",
        "faceting": "faceting", "pagination": "pagination", "non-separator-tokens": "nonSeparatorTokens", "separator-tokens": "separatorTokens",
        "dictionary": "dictionary", "proximity-precision": "proximityPrecision", "search-cutoff-ms": "searchCutoffMs",
        "localized-attributes": "localizedAttributes", "facet-search": "facetSearch", "prefix-search": "prefixSearch",
    ]

    public init() {}

    /// The settings stored for an index (what `json` wrote).
    public init(stored: JSONObject) {
        self.init()
        try? apply(stored)
    }

    /// A `PATCH /settings` body (or one setting): given names replace, `null` resets to the
    /// default; nothing changes when any value is invalid.
    public mutating func apply(_ patch: JSONObject) throws(SearchError) {
        var next = self
        for (name, value) in patch {
            try next.set(name, value)
        }
        self = next
    }

    private mutating func set(_ name: String, _ value: JSONValue) throws(SearchError) {
        let defaults = IndexSettings()
        func strings() throws(SearchError) -> [String]? {
            if value == .null { return nil }
            guard let items = value.arrayValue else { throw Self.invalid(name, "an array of strings") }
            var result: [String] = []
            for item in items {
                guard let text = item.stringValue else { throw Self.invalid(name, "an array of strings") }
                result.append(text)
            }
            return result
        }
        switch name {
        case "displayedAttributes": displayedAttributes = try strings() ?? defaults.displayedAttributes
        case "searchableAttributes": searchableAttributes = try strings() ?? defaults.searchableAttributes
        case "filterableAttributes":
            // Meilisearch 1.14's granular form ({attributePatterns: [...]}) is read for its names.
            if let items = value.arrayValue, items.contains(where: { $0.objectValue != nil }) {
                filterableAttributes = items.flatMap { item -> [String] in
                    if let text = item.stringValue { return [text] }
                    return item["attributePatterns"]?.arrayValue?.compactMap(\.stringValue) ?? []
                }
            } else {
                filterableAttributes = try strings() ?? []
            }
        case "sortableAttributes": sortableAttributes = try strings() ?? []
        case "stopWords": stopWords = (try strings() ?? []).map(TextNormalizer.fold)
        case "rankingRules":
            let rules = try strings() ?? defaults.rankingRules
            for rule in rules where !Self.builtInRules.contains(rule) && Self.customRule(rule) == nil {
                throw SearchError.badRequest(
                    "invalid_settings_ranking_rules",
                    "`\(rule)` ranking rule is invalid. Valid ranking rules are words, typo, sort, proximity, attribute, exactness and custom ranking rules.")
            }
            rankingRules = rules
        case "synonyms":
            if value == .null { synonyms = [:]; return }
            guard let object = value.objectValue else { throw Self.invalid(name, "an object of arrays of strings") }
            var result: [String: [String]] = [:]
            for (word, alternatives) in object {
                guard let list = alternatives.arrayValue?.compactMap(\.stringValue), list.count == alternatives.arrayValue?.count else {
                    throw Self.invalid(name, "an object of arrays of strings")
                }
                result[word] = list
            }
            synonyms = result
        case "distinctAttribute":
            if value == .null { distinctAttribute = nil; return }
            guard let text = value.stringValue else { throw Self.invalid(name, "a string") }
            distinctAttribute = text
        case "typoTolerance":
            if value == .null { typoTolerance = TypoTolerance(); return }
            guard let object = value.objectValue else { throw Self.invalid(name, "an object") }
            var typo = typoTolerance
            for (key, field) in object {
                switch key {
                case "enabled":
                    guard let flag = field.boolValue else { throw Self.invalid("typoTolerance.enabled", "a boolean") }
                    typo.enabled = flag
                case "minWordSizeForTypos":
                    guard let sizes = field.objectValue else { throw Self.invalid("typoTolerance.minWordSizeForTypos", "an object") }
                    if let one = sizes["oneTypo"]?.intValue { typo.oneTypo = Int(one) }
                    if let two = sizes["twoTypos"]?.intValue { typo.twoTypos = Int(two) }
                    guard typo.oneTypo >= 0, typo.twoTypos >= typo.oneTypo else {
                        throw SearchError.badRequest(
                            "invalid_settings_typo_tolerance",
                            "`minWordSizeForTypos` setting is invalid. `oneTypo` and `twoTypos` fields should be between `0` and `255`, and `twoTypos` should be greater or equals to `oneTypo`")
                    }
                case "disableOnWords": typo.disableOnWords = (field.arrayValue?.compactMap(\.stringValue) ?? []).map(TextNormalizer.fold)
                case "disableOnAttributes": typo.disableOnAttributes = field.arrayValue?.compactMap(\.stringValue) ?? []
                case "disableOnNumbers": typo.disableOnNumbers = field.boolValue ?? false
                default: throw Self.unknown("typoTolerance.\(key)")
                }
            }
            typoTolerance = typo
        case "faceting":
            if value == .null {
                maxValuesPerFacet = 100
                passthrough["sortFacetValuesBy"] = nil
                return
            }
            guard let object = value.objectValue else { throw Self.invalid(name, "an object") }
            if let count = object["maxValuesPerFacet"]?.intValue {
                guard count >= 0 else { throw Self.invalid("faceting.maxValuesPerFacet", "a positive integer") }
                maxValuesPerFacet = Int(count)
            }
            if let sortBy = object["sortFacetValuesBy"] { passthrough["sortFacetValuesBy"] = sortBy }
        case "pagination":
            if value == .null { maxTotalHits = 1_000; return }
            guard let object = value.objectValue else { throw Self.invalid(name, "an object") }
            if let count = object["maxTotalHits"]?.intValue {
                guard count > 0 else { throw Self.invalid("pagination.maxTotalHits", "a positive integer") }
                maxTotalHits = Int(min(count, 100_000_000))
            }
        default:
            guard Self.passthroughNames.contains(name) else { throw Self.unknown(name) }
            passthrough[name] = value.nonNull
        }
    }

    /// `price:asc` style rules: the attribute and whether ascending.
    static func customRule(_ rule: String) -> (attribute: String, ascending: Bool)? {
        guard let colon = rule.lastIndex(of: ":") else { return nil }
        let attribute = String(rule[..<colon])
        let direction = rule[rule.index(after: colon)...]
        guard !attribute.isEmpty, direction == "asc" || direction == "desc" else { return nil }
        return (attribute, direction == "asc")
    }

    static func invalid(_ name: String, _ expected: String) -> SearchError {
        let code = "invalid_settings_" + name.split(separator: ".")[0].reduce(into: "") { result, character in
            if character.isUppercase { result += "_" + character.lowercased() } else { result.append(character) }
        }
        return SearchError.badRequest(code, "Invalid value at `.\(name)`: expected \(expected).")
    }

    static func unknown(_ name: String) -> SearchError {
        SearchError.badRequest("bad_request", "Unknown field `\(name)`: expected one of `displayedAttributes`, `searchableAttributes`, `filterableAttributes`, `sortableAttributes`, `rankingRules`, `stopWords`, `synonyms`, `distinctAttribute`, `typoTolerance`, `faceting`, `pagination`")
    }

    private var synonymsJSON: JSONObject {
        var object = JSONObject()
        for (word, alternatives) in synonyms.sorted(by: { $0.key < $1.key }) { object[word] = .array(alternatives.map(JSONValue.string)) }
        return object
    }

    /// Every setting, as `GET /settings` shows it.
    public var json: JSONObject {
        var object: JSONObject = [
            "displayedAttributes": .array(displayedAttributes.map(JSONValue.string)),
            "searchableAttributes": .array(searchableAttributes.map(JSONValue.string)),
            "filterableAttributes": .array(filterableAttributes.map(JSONValue.string)),
            "sortableAttributes": .array(sortableAttributes.map(JSONValue.string)),
            "rankingRules": .array(rankingRules.map(JSONValue.string)),
            "stopWords": .array(stopWords.map(JSONValue.string)),
            "nonSeparatorTokens": .array([]), "separatorTokens": .array([]), "dictionary": .array([]),
            "synonyms": .object(synonymsJSON),
            "distinctAttribute": distinctAttribute.map(JSONValue.string) ?? .null,
            "proximityPrecision": "byWord",
            "typoTolerance": [
                "enabled": .bool(typoTolerance.enabled),
                "minWordSizeForTypos": ["oneTypo": .integer(Int64(typoTolerance.oneTypo)), "twoTypos": .integer(Int64(typoTolerance.twoTypos))],
                "disableOnWords": .array(typoTolerance.disableOnWords.map(JSONValue.string)),
                "disableOnAttributes": .array(typoTolerance.disableOnAttributes.map(JSONValue.string)),
                "disableOnNumbers": .bool(typoTolerance.disableOnNumbers),
            ],
            "faceting": ["maxValuesPerFacet": .integer(Int64(maxValuesPerFacet)), "sortFacetValuesBy": passthrough["sortFacetValuesBy"] ?? ["*": "alpha"]],
            "pagination": ["maxTotalHits": .integer(Int64(maxTotalHits))],
            "searchCutoffMs": .null, "localizedAttributes": .null, "facetSearch": true, "prefixSearch": "indexingTime",
        ]
        for (name, value) in passthrough where name != "sortFacetValuesBy" { object[name] = value }
        return object
    }
}
