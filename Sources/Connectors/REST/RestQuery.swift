/// A REST request parsed from PostgREST's URL grammar, before anything is checked against the
/// model. Parsing never touches the database and refuses hostile input with PGRST100.
public struct RestQuery: Sendable, Equatable {
    /// `select=` as a tree; `nil` means `*`.
    public var select: [SelectItem]?
    /// Conditions by embedding path ([] for the top level, ["books"] for `books.genre=eq.x`).
    public var conditions: [[String]: [Condition]] = [:]
    public var order: [[String]: [OrderTerm]] = [:]
    public var limit: [[String]: Int] = [:]
    public var offset: [[String]: Int] = [:]
    public var onConflict: [String]?
    public var columns: [String]?
    /// For RPC over GET: the remaining parameters are the function's arguments.
    public var arguments: [(String, String)] = []

    public static func == (lhs: RestQuery, rhs: RestQuery) -> Bool {
        lhs.select == rhs.select && lhs.conditions == rhs.conditions && lhs.order == rhs.order && lhs.limit == rhs.limit
            && lhs.offset == rhs.offset && lhs.onConflict == rhs.onConflict && lhs.columns == rhs.columns
            && lhs.arguments.map(\.0) == rhs.arguments.map(\.0) && lhs.arguments.map(\.1) == rhs.arguments.map(\.1)
    }
}

/// A column reference with an optional JSON path: `details->>lang`, `data->a->0`.
public struct Field: Sendable, Equatable, Hashable {
    public var name: String
    public var path: [PathStep]

    public enum PathStep: Sendable, Equatable, Hashable {
        /// `->key`: keeps JSON.
        case json(String)
        /// `->>key`: yields text.
        case text(String)
    }

    public var yieldsText: Bool {
        if case .text? = path.last { return true }
        return false
    }

    /// The name a selected JSON path gets by default: its last key, as PostgREST does.
    public var defaultAlias: String {
        switch path.last {
        case .json(let key)?, .text(let key)?: key
        case nil: name
        }
    }
}

public enum SelectItem: Sendable, Equatable {
    case star
    case column(Field, alias: String?, cast: String?)
    case embed(Embed)
}

public struct Embed: Sendable, Equatable {
    public var relation: String
    public var alias: String?
    public var hint: String?
    public var inner: Bool
    public var select: [SelectItem]
    /// Set by surfaces that already know the relation (GraphQL's fields name one exactly); the
    /// REST grammar leaves it nil and the planner resolves `relation` and `hint`.
    public var resolved: Relation? = nil
}

public enum FilterOperator: String, Sendable, CaseIterable {
    case eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, `in`, `is`, isdistinct
    case fts, plfts, phfts, wfts, cs, cd, ov, sl, sr, nxr, nxl, adj
}

public struct Filter: Sendable, Equatable {
    public enum Quantifier: String, Sendable { case any, all }

    public var field: Field
    public var negated: Bool
    public var op: FilterOperator
    public var quantifier: Quantifier?
    /// For full-text search: the text search configuration, `fts(english)`.
    public var language: String?
    public var value: FilterValue
    /// PostgREST's `*` for `%` in `like`/`ilike` patterns. GraphQL's `startsWith` builds its
    /// pattern itself, where a `*` is the character.
    public var starIsWildcard = true
}

public enum FilterValue: Sendable, Equatable {
    case scalar(String)
    case list([String])
}

public indirect enum Condition: Sendable, Equatable {
    case filter(Filter)
    case and([Condition], negated: Bool)
    case or([Condition], negated: Bool)
}

public struct OrderTerm: Sendable, Equatable {
    public enum Nulls: Sendable, Equatable { case first, last }
    public var field: Field
    public var descending: Bool
    public var nulls: Nulls?
}
