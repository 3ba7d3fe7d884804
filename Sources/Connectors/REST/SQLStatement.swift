import PostgresNIO

/// One SQL statement with its bind parameters. Identifiers enter only through `quote`, values
/// only as binds.
public struct SQLStatement: Sendable {
    public var sql = ""
    public private(set) var binds = PostgresBindings()
    /// Set when the statement reports policy-check violations that must undo it.
    public var checked = false
    /// Set when the statement answers one JSON object per row (`row`), to be joined into an array,
    /// instead of the single (body, page_count, total, violations) row. Cheaper for the database
    /// than aggregating.
    public var streaming = false
    /// Set when a write also answers every row it wrote, whole (`changes`), for realtime
    /// subscribers of a source whose changes cannot be captured from the database.
    public var publishes = false
    /// False for statements whose text varies with the data (one VALUES row per object, a batch
    /// of policy questions): preparing them would only fill the connection with one-off plans.
    public var reusable = true
    /// The parameters' types in order (`s` text, `a` text[], `i` integer): with the SQL, what
    /// identifies a prepared statement.
    public private(set) var parameterTypes = ""
    private var aliases = 0

    /// A fresh table alias for a subquery.
    public mutating func alias(_ prefix: String) -> String {
        aliases += 1
        return "\(prefix)\(aliases)"
    }

    public init() {}

    public mutating func bind(_ value: String) -> String {
        parameterTypes += "s"
        binds.append(value)
        return "$\(parameterTypes.utf8.count)"
    }

    public mutating func bind(_ values: [String]) -> String {
        parameterTypes += "a"
        binds.append(values)
        return "$\(parameterTypes.utf8.count)"
    }

    public mutating func bind(_ value: Int) -> String {
        parameterTypes += "i"
        binds.append(value)
        return "$\(parameterTypes.utf8.count)"
    }

    public var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}

/// Double-quotes an identifier, doubling inner quotes: safe for any name.
@inline(__always)
public func quote(_ identifier: String) -> String {
    guard identifier.utf8.contains(0x22) else { return "\"" + identifier + "\"" }
    return "\"" + escaping(identifier, "\"", as: "\"\"") + "\""
}

/// Replaces every `character` scalar. By scalar, not by grapheme: a quote followed by a combining
/// mark is still a quote to PostgreSQL.
func escaping(_ text: String, _ character: Unicode.Scalar, as replacement: String) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 2)
    for scalar in text.unicodeScalars {
        if scalar == character { out.unicodeScalars.append(contentsOf: replacement.unicodeScalars) } else { out.unicodeScalars.append(scalar) }
    }
    return out
}

func quote(_ name: EntityName) -> String {
    quote(name.schema) + "." + quote(name.name)
}

import Foundation
