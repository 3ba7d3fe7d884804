import PostgresNIO

/// One SQL statement with its bind parameters. Identifiers enter only through `quote`, values
/// only as binds.
public struct SQLStatement: Sendable {
    public var sql = ""
    public var binds = PostgresBindings()
    private var count = 0

    public init() {}

    public mutating func bind(_ value: String) -> String {
        binds.append(value)
        count += 1
        return "$\(count)"
    }

    public mutating func bind(_ values: [String]) -> String {
        binds.append(values)
        count += 1
        return "$\(count)"
    }

    public mutating func bind(_ value: Int) -> String {
        binds.append(value)
        count += 1
        return "$\(count)"
    }

    public var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}

/// Double-quotes an identifier, doubling inner quotes: safe for any name.
@inline(__always)
public func quote(_ identifier: String) -> String {
    "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

func quote(_ name: EntityName) -> String {
    quote(name.schema) + "." + quote(name.name)
}

import Foundation
