import Runtime

/// What a REST request resolves to against the model: which entity, which columns and embedded
/// relations, which conditions — all names checked. Rendering to SQL is `SQLRenderer`'s job.
public struct ReadPlan: Sendable {
    public var entity: Entity
    public var columns: [SelectedColumn]
    public var embeds: [EmbedPlan]
    public var conditions: [Condition]
    public var order: [OrderTerm]
    public var limit: Int?
    public var offset: Int?
    /// The rows the caller's policies let them see (nil: all).
    public var rowRule: RowRule? = nil
    /// The columns the caller's policies let them read (nil: all).
    public var readableColumns: Set<String>? = nil
}

public struct SelectedColumn: Sendable {
    public var field: Field
    public var outputName: String
    public var cast: String?
}

public struct EmbedPlan: Sendable {
    public var relation: Relation
    public var outputName: String
    public var inner: Bool
    public var plan: ReadPlan
    /// For many-to-many: the rows of the junction table the caller may read (nil: all).
    public var junctionRule: RowRule? = nil
}

public enum WriteKind: Sendable, Equatable {
    /// `missingDefault`: a column absent from a row takes its default instead of NULL.
    case insert(rows: [JSONObject], columns: [String], onConflict: OnConflict?, missingDefault: Bool)
    case update(values: JSONObject, columns: [String])
    case delete
}

public enum OnConflict: Sendable, Equatable {
    case merge(target: [String])
    case ignore(target: [String])
}

public struct WritePlan: Sendable {
    public var kind: WriteKind
    /// Conditions on the rows to update or delete.
    public var target: ReadPlan
    /// What to return of the written rows.
    public var returning: ReadPlan
    /// What every written row must satisfy, or the write is undone (policies' `check`). For an
    /// upsert under policies, what inserted rows must satisfy.
    public var check: RowRule? = nil
    /// The update half of an upsert, under the caller's update policy (nil: the service role's
    /// plain `DO UPDATE` of every sent column).
    public var conflictUpdate: ConflictUpdate? = nil
}

public struct ConflictUpdate: Sendable {
    /// Which existing rows the caller may update; others are left as they are.
    public var rows: RowRule?
    /// The columns to overwrite from the sent row.
    public var columns: [String]
    /// Values forced by the update policy.
    public var presets: [(String, JSONValue)]
    /// What updated rows must satisfy.
    public var check: RowRule?
}

public struct CallPlan: Sendable {
    public var operation: Operation
    public var arguments: [(name: String, value: JSONValue)]
    /// For functions returning rows of an entity: the read over those rows.
    public var read: ReadPlan?
    /// Whether the statement also counts every row of the function's set that the read's
    /// conditions select, past its page (GraphQL's `totalCount` of a function's connection).
    public var countsRows = false
}

/// How many rows a write may touch before it is undone: any number, exactly one (a singular answer
/// was asked for, PGRST116), or at most a bound (GraphQL's `atMost`, MB729).
public enum WrittenRows: Sendable, Equatable {
    case any
    case exactlyOne
    case atMost(Int)

    /// Whether the write must run in a transaction that can still be undone once its count is known.
    public var bounds: Bool { self != .any }

    public func check(_ count: Int) throws(RestError) {
        switch self {
        case .any: return
        case .exactlyOne: if count != 1 { throw RestError.singular(count) }
        case .atMost(let limit):
            if count > limit {
                throw RestError(
                    status: 400, code: "MB729", message: "update impacts too many records",
                    details: "\(count) rows matched; atMost is \(limit)")
            }
        }
    }
}
