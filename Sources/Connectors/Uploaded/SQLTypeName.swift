/// A column type as written in DDL, normalised to what PostgreSQL's `format_type` prints, with the
/// catalog facts (`typname`, category, enum-ness) the model builder reads from live introspection.
struct SQLTypeName: Equatable, Sendable {
    var native: String
    var typname: String
    var category: String
    var typtype: String = "b"
    var element: (typname: String, category: String, typtype: String)?
    /// `serial` and friends: an integer with a sequence default and NOT NULL.
    var serial = false

    static func == (lhs: SQLTypeName, rhs: SQLTypeName) -> Bool {
        lhs.native == rhs.native && lhs.typname == rhs.typname && lhs.category == rhs.category && lhs.typtype == rhs.typtype
            && lhs.serial == rhs.serial && lhs.element?.typname == rhs.element?.typname
    }

    /// `words`: the type's name parts as written (lower-cased unless quoted), `modifiers` the
    /// numbers in parentheses, `schema` a qualifier, `dimensions` how many `[]` follow.
    static func resolve(words: [String], schema: String?, modifiers: [String], dimensions: Int, enums: [String: String]) -> SQLTypeName {
        var base = scalar(words: words, schema: schema, modifiers: modifiers, enums: enums)
        guard dimensions > 0 else { return base }
        base.serial = false
        return SQLTypeName(
            native: base.native + "[]", typname: "_" + base.typname, category: "A", typtype: "b",
            element: (base.typname, base.category, base.typtype))
    }

    private static func scalar(words: [String], schema: String?, modifiers: [String], enums: [String: String]) -> SQLTypeName {
        let joined = words.joined(separator: " ")
        let mods = modifiers.isEmpty ? "" : "(" + modifiers.joined(separator: ",") + ")"
        if schema == nil || schema == "pg_catalog" {
            switch joined {
            case "int", "integer", "int4": return SQLTypeName(native: "integer", typname: "int4", category: "N")
            case "smallint", "int2": return SQLTypeName(native: "smallint", typname: "int2", category: "N")
            case "bigint", "int8": return SQLTypeName(native: "bigint", typname: "int8", category: "N")
            case "serial", "serial4": return SQLTypeName(native: "integer", typname: "int4", category: "N", serial: true)
            case "bigserial", "serial8": return SQLTypeName(native: "bigint", typname: "int8", category: "N", serial: true)
            case "smallserial", "serial2": return SQLTypeName(native: "smallint", typname: "int2", category: "N", serial: true)
            case "real", "float4": return SQLTypeName(native: "real", typname: "float4", category: "N")
            case "double precision", "float8", "float": return SQLTypeName(native: "double precision", typname: "float8", category: "N")
            case "numeric", "decimal": return SQLTypeName(native: "numeric" + mods, typname: "numeric", category: "N")
            case "money": return SQLTypeName(native: "money", typname: "money", category: "N")
            case "boolean", "bool": return SQLTypeName(native: "boolean", typname: "bool", category: "B")
            case "text": return SQLTypeName(native: "text", typname: "text", category: "S")
            case "varchar", "character varying": return SQLTypeName(native: "character varying" + mods, typname: "varchar", category: "S")
            case "char", "character", "bpchar":
                return SQLTypeName(native: "character" + (mods.isEmpty ? "(1)" : mods), typname: "bpchar", category: "S")
            case "name": return SQLTypeName(native: "name", typname: "name", category: "S")
            case "citext": return SQLTypeName(native: "citext", typname: "citext", category: "S")
            case "timestamp", "timestamp without time zone":
                return SQLTypeName(native: "timestamp" + mods + " without time zone", typname: "timestamp", category: "D")
            case "timestamptz", "timestamp with time zone":
                return SQLTypeName(native: "timestamp" + mods + " with time zone", typname: "timestamptz", category: "D")
            case "time", "time without time zone": return SQLTypeName(native: "time" + mods + " without time zone", typname: "time", category: "D")
            case "timetz", "time with time zone": return SQLTypeName(native: "time" + mods + " with time zone", typname: "timetz", category: "D")
            case "date": return SQLTypeName(native: "date", typname: "date", category: "D")
            case "interval": return SQLTypeName(native: "interval" + mods, typname: "interval", category: "T")
            case "uuid": return SQLTypeName(native: "uuid", typname: "uuid", category: "U")
            case "json": return SQLTypeName(native: "json", typname: "json", category: "U")
            case "jsonb": return SQLTypeName(native: "jsonb", typname: "jsonb", category: "U")
            case "bytea": return SQLTypeName(native: "bytea", typname: "bytea", category: "U")
            case "inet", "cidr", "macaddr": return SQLTypeName(native: joined, typname: joined, category: "I")
            case "tsvector", "tsquery", "xml", "oid": return SQLTypeName(native: joined, typname: joined, category: "U")
            default: break
            }
        }
        let name = words.joined(separator: " ")
        let typeSchema = schema ?? enums[name] ?? "public"
        // format_type leaves out the schema of types on the search path (public here).
        let native = (typeSchema == "public" ? "" : SQLNames.quoteIfNeeded(typeSchema) + ".") + SQLNames.quoteIfNeeded(name) + mods
        if enums[name] == typeSchema {
            return SQLTypeName(native: native, typname: name, category: "E", typtype: "e")
        }
        return SQLTypeName(native: native, typname: name, category: "U")
    }
}

enum SQLNames {
    static let reserved: Set<String> = [
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "check", "collate", "column",
        "constraint", "create", "current_catalog", "current_date", "current_role", "current_time", "current_timestamp", "current_user",
        "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant",
        "group", "having", "in", "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
        "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning", "select", "session_user", "some",
        "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where", "window",
        "with",
    ]

    /// Quotes a name the way PostgreSQL prints it: only when it would not read back unquoted.
    static func quoteIfNeeded(_ name: String) -> String {
        let plain = name.utf8.first.map { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F } ?? false
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x24 }
        return plain && !reserved.contains(name) ? name : "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
