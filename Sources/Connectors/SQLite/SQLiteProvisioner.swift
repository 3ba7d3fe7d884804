import Foundation
import Runtime

/// Creates and migrates an uploaded model's tables in a SQLite file. As for PostgreSQL, the DDL
/// is generated from the model — names quoted, types mapped from a fixed vocabulary, defaults
/// rebuilt from literals and a few known functions — never the uploaded text. Enums become CHECK
/// constraints; foreign keys are declared in the tables (SQLite cannot add them later); identity
/// columns that are the primary key become `INTEGER PRIMARY KEY AUTOINCREMENT`, which, like an
/// identity, never reuses a number.
public struct SQLiteProvisioner: Sendable {
    public init() {}

    public typealias Refusal = SchemaProvisioner.Refusal

    /// The statements creating `model`, and what could only be hosted approximately.
    public func statements(for model: SchemaModel) throws(Refusal) -> (statements: [String], warnings: [String]) {
        var statements: [String] = []
        var warnings: [String] = []
        var seen = Set<String>()
        for entity in model.entities where entity.kind == .table {
            guard seen.insert(entity.name.lowercased()).inserted else {
                throw Refusal(message: "two tables are named '\(entity.name)' (SQLite names are case-insensitive and have no schemas)")
            }
        }
        for entity in model.entities {
            guard entity.kind == .table else {
                warnings.append("\(entity.kind.rawValue) '\(entity.name)' is not hosted: SQLite-hosted tables run no uploaded queries")
                continue
            }
            statements += try tableStatements(entity, in: model, warnings: &warnings)
        }
        if !model.operations.isEmpty {
            warnings.append("function(s) \(model.operations.map(\.name).joined(separator: ", ")) are not hosted: SQLite has no stored functions")
        }
        guard !statements.contains(where: { $0.utf8.contains(0) }) else { throw Refusal(message: "a name or label contains a NUL byte") }
        return (statements, warnings)
    }

    /// CREATE TABLE (named `as` when rebuilding) and its indexes.
    func tableStatements(_ entity: Entity, in model: SchemaModel, named: String? = nil, warnings: inout [String]) throws(Refusal) -> [String] {
        let name = named ?? entity.name
        var parts: [String] = []
        let rowidKey = Self.rowidKey(entity)
        for column in entity.columns {
            parts.append(try columnDefinition(column, of: entity, rowidKey: rowidKey == column.name, warnings: &warnings))
        }
        if !entity.primaryKey.isEmpty, rowidKey == nil {
            parts.append("PRIMARY KEY (\(entity.primaryKey.map(quote).joined(separator: ", ")))")
        }
        for key in entity.uniqueKeys where key.columns != entity.primaryKey {
            parts.append("CONSTRAINT \(quote(key.name)) UNIQUE (\(key.columns.map(quote).joined(separator: ", ")))")
        }
        for relation in model.relations where relation.from.name == entity.name && SchemaProvisioner.holdsForeignKey(relation) {
            guard !relation.toColumns.isEmpty, relation.toColumns.count == relation.fromColumns.count else {
                warnings.append("foreign key '\(relation.constraint)' names no key of '\(relation.to.name)'; not hosted")
                continue
            }
            parts.append(
                "CONSTRAINT \(quote(relation.constraint)) FOREIGN KEY (\(relation.fromColumns.map(quote).joined(separator: ", "))) "
                    + "REFERENCES \(quote(relation.to.name)) (\(relation.toColumns.map(quote).joined(separator: ", ")))")
        }
        var statements = ["CREATE TABLE \(quote(name)) (\(parts.joined(separator: ", ")))"]
        for index in SchemaProvisioner.ownIndexes(entity) {
            guard index.columns.allSatisfy({ entity.column(named: $0) != nil }) else {
                warnings.append("index '\(index.name)' on an expression is not hosted")
                continue
            }
            statements.append(indexStatement(index, on: entity.name))
        }
        return statements
    }

    func indexStatement(_ index: Index, on table: String) -> String {
        "CREATE \(index.unique ? "UNIQUE " : "")INDEX \(quote(table + "_" + index.name)) ON \(quote(table)) (\(index.columns.map(quote).joined(separator: ", ")))"
    }

    /// The primary key column that becomes SQLite's rowid: a single integer identity (or serial).
    static func rowidKey(_ entity: Entity) -> String? {
        guard entity.primaryKey.count == 1, let column = entity.column(named: entity.primaryKey[0]),
            column.type == .integer || column.type == .bigint, column.isIdentity || (column.defaultExpression?.hasPrefix("nextval(") ?? false)
        else { return nil }
        return column.name
    }

    func columnDefinition(_ column: Column, of entity: Entity, rowidKey: Bool, warnings: inout [String]) throws(Refusal) -> String {
        if rowidKey { return "\(quote(column.name)) INTEGER PRIMARY KEY AUTOINCREMENT" }
        var definition = "\(quote(column.name)) \(try Self.declaredType(column, table: entity.name))"
        if column.isIdentity || (column.defaultExpression?.hasPrefix("nextval(") ?? false) {
            warnings.append("\(entity.name).\(column.name) is an identity outside a one-column primary key; SQLite does not generate it")
        } else if let expression = column.defaultExpression {
            guard let value = Self.defaultExpression(expression, for: column) else {
                throw Refusal(message: "the default of \(entity.name).\(column.name) has no SQLite equivalent: \(expression)")
            }
            definition += " DEFAULT \(value)"
        }
        if !column.nullable { definition += " NOT NULL" }
        var checks: [String] = []
        if column.type == .enumeration, let values = column.enumValues ?? [] as [String]?, !values.isEmpty {
            checks.append("\(quote(column.name)) IN (\(values.map(SQLiteValueCoder.literal).joined(separator: ", ")))")
        }
        if column.type == .boolean { checks.append("\(quote(column.name)) IN (0, 1)") }
        if let valueChecks = column.checks {
            let (condition, unenforced) = valueChecks.condition(for: column.name, dialect: .sqlite)
            if let condition { checks.append(condition) }
            for keyword in unenforced {
                warnings.append("\(entity.name).\(column.name): \(keyword) is not enforced on a SQLite-hosted table (SQLite has no regular expressions)")
            }
        }
        if !checks.isEmpty { definition += " CHECK (\(checks.joined(separator: " AND ")))" }
        return definition
    }

    /// A declared type that gives SQLite the right affinity and reads back as the model's type
    /// when the file is introspected.
    static func declaredType(_ column: Column, table: String) throws(Refusal) -> String {
        switch column.type {
        case .integer: return "INTEGER"
        case .bigint: return "BIGINT"
        case .number:
            let native = column.nativeType.lowercased()
            return native.hasPrefix("real") || native.hasPrefix("double") || native.hasPrefix("float") ? "DOUBLE PRECISION" : "NUMERIC"
        case .boolean: return "BOOLEAN"
        case .string, .enumeration: return "TEXT"
        case .json: return "JSONB"
        case .date: return "DATE"
        case .time: return "TIME"
        case .datetime: return SQLiteValueCoder.hasTimeZone(column) ? "TIMESTAMPTZ" : "TIMESTAMP"
        case .uuid: return "UUID"
        case .binary: return "BLOB"
        case .array: return "JSONB"
        case .other:
            throw Refusal(message: "column \(table).\(column.name) has type '\(column.nativeType)', which SQLite-hosted tables cannot hold")
        }
    }

    /// A default rebuilt for SQLite, or nil when it has no equivalent: literals (through the
    /// column's own value rules), booleans, NULL, the current time and date, and random UUIDs.
    static func defaultExpression(_ expression: String, for column: Column) -> String? {
        guard let tokens = try? SQLTokenizer.tokenize(expression), !tokens.isEmpty else { return nil }
        // Casts add nothing here: the column's type decides how a literal is stored.
        var core: [SQLToken] = []
        var index = 0
        while index < tokens.count {
            if tokens[index].isSymbol("::") {
                index += 1
                while index < tokens.count {
                    let token = tokens[index]
                    if token.kind == .word || token.kind == .quoted || token.isSymbol(".") || token.isSymbol("[") || token.isSymbol("]") {
                        index += 1
                    } else if token.isSymbol("(") {
                        // Modifiers: `numeric(6,2)`.
                        while index < tokens.count, !tokens[index].isSymbol(")") { index += 1 }
                        index += 1
                    } else {
                        break
                    }
                }
                continue
            }
            core.append(tokens[index])
            index += 1
        }
        let words = core.map { $0.kind == .word ? $0.text.lowercased() : $0.text }
        switch words {
        case ["null"]: return "NULL"
        case ["true"]: return "1"
        case ["false"]: return "0"
        case ["now", "(", ")"], ["current_timestamp"], ["localtimestamp"], ["statement_timestamp", "(", ")"], ["transaction_timestamp", "(", ")"]:
            let zone = SQLiteValueCoder.hasTimeZone(column) ? " || '+00:00'" : ""
            return "(rtrim(rtrim(strftime('%Y-%m-%dT%H:%M:%f', 'now'), '0'), '.')\(zone))"
        case ["current_date"]: return "(date('now'))"
        case ["current_time"], ["localtime"]: return "(time('now'))"
        case ["gen_random_uuid", "(", ")"], ["uuid_generate_v4", "(", ")"]:
            return "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' "
                + "|| substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
        default:
            break
        }
        var sign = ""
        var rest = core[...]
        if rest.first?.isSymbol("-") == true {
            sign = "-"
            rest = rest.dropFirst()
        }
        guard rest.count == 1, let token = rest.first else { return nil }
        switch token.kind {
        case .number:
            return column.type == .string ? SQLiteValueCoder.literal(sign + token.text) : sign + token.text
        case .string:
            guard sign.isEmpty, let stored = try? SQLiteValueCoder.bind(text: token.text, for: column) else { return nil }
            switch stored {
            case .integer(let value): return String(value)
            case .float(let value): return String(value)
            case .text(let text): return SQLiteValueCoder.literal(text)
            case .null: return "NULL"
            case .blob: return nil
            }
        default:
            return nil
        }
    }

    // MARK: - Re-uploads

    /// What re-uploading changes, with PostgreSQL's rules: additive steps always, steps that
    /// lose or rewrite data (dropped tables or columns, changed types or keys) only when allowed.
    /// A table SQLite's `ALTER TABLE` cannot change in place is rebuilt: created anew, its rows
    /// copied, the old one dropped and the new one renamed, all in the one transaction, with
    /// foreign keys checked at commit.
    public func migration(from current: SchemaModel, to wanted: SchemaModel) throws(Refusal) -> SchemaMigration {
        var migration = SchemaMigration()
        migration.statements.append("PRAGMA defer_foreign_keys = ON")
        let currentTables = Dictionary(current.entities.filter { $0.kind == .table }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let wantedTables = wanted.entities.filter { $0.kind == .table }
        var scratch: [String] = []
        for entity in wantedTables {
            guard let existing = currentTables[entity.name] else {
                migration.statements += try tableStatements(entity, in: wanted, warnings: &migration.warnings)
                migration.changes.append("new table \(entity.name)")
                continue
            }
            let before = try tableStatements(existing, in: current, warnings: &scratch)
            let after = try tableStatements(entity, in: wanted, warnings: &migration.warnings)
            guard before != after else { continue }
            var tableChanges: [String] = []
            for column in entity.columns {
                guard let old = existing.column(named: column.name) else {
                    tableChanges.append("new column \(entity.name).\(column.name)")
                    continue
                }
                if old.type != column.type || old.nativeType != column.nativeType {
                    migration.destructive.append("\(entity.name).\(column.name) changes type from \(old.nativeType) to \(column.nativeType)")
                }
                if old.nullable && !column.nullable { tableChanges.append("\(entity.name).\(column.name) becomes NOT NULL") }
                if !old.nullable && column.nullable { tableChanges.append("\(entity.name).\(column.name) becomes nullable") }
            }
            for old in existing.columns where entity.column(named: old.name) == nil {
                migration.destructive.append("column \(entity.name).\(old.name) is dropped")
            }
            if existing.primaryKey != entity.primaryKey { migration.destructive.append("table \(entity.name) changes its primary key") }
            // Only new nullable columns with constant defaults: ALTER TABLE ADD COLUMN.
            let onlyAdded = existing.columns.allSatisfy { old in entity.column(named: old.name) == old }
                && existing.primaryKey == entity.primaryKey && existing.uniqueKeys == entity.uniqueKeys
                && Self.foreignKeys(of: existing.name, in: current) == Self.foreignKeys(of: entity.name, in: wanted)
                && entity.columns.filter { existing.column(named: $0.name) == nil }.allSatisfy { column in
                    column.nullable && (column.defaultExpression.map { Self.defaultExpression($0, for: column)?.hasPrefix("(") == false } ?? true)
                }
            if onlyAdded {
                for column in entity.columns where existing.column(named: column.name) == nil {
                    migration.statements.append(
                        "ALTER TABLE \(quote(entity.name)) ADD COLUMN \(try columnDefinition(column, of: entity, rowidKey: false, warnings: &migration.warnings))")
                }
                let oldIndexes = Set(SchemaProvisioner.ownIndexes(existing).map { "\($0.unique)\($0.columns)" })
                for index in SchemaProvisioner.ownIndexes(entity) where !oldIndexes.contains("\(index.unique)\(index.columns)") {
                    migration.statements.append(indexStatement(index, on: entity.name))
                    tableChanges.append("new index \(index.name)")
                }
            } else {
                let temporary = "_mb_rebuild_" + entity.name
                migration.statements += try tableStatements(entity, in: wanted, named: temporary, warnings: &scratch).prefix(1)
                let common = entity.columns.map(\.name).filter { existing.column(named: $0) != nil }.map(quote).joined(separator: ", ")
                if !common.isEmpty {
                    migration.statements.append("INSERT INTO \(quote(temporary)) (\(common)) SELECT \(common) FROM \(quote(entity.name))")
                }
                migration.statements.append("DROP TABLE \(quote(entity.name))")
                migration.statements.append("ALTER TABLE \(quote(temporary)) RENAME TO \(quote(entity.name))")
                migration.statements += after.dropFirst()
                tableChanges.append("table \(entity.name) rebuilt")
            }
            migration.changes += tableChanges
        }
        let wantedNames = Set(wantedTables.map(\.name))
        for name in currentTables.keys.sorted() where !wantedNames.contains(name) {
            migration.statements.append("DROP TABLE \(quote(name))")
            migration.destructive.append("table \(name) is dropped")
        }
        migration.changes += migration.destructive
        if migration.statements.count == 1 { migration.statements = [] }
        return migration
    }

    static func foreignKeys(of table: String, in model: SchemaModel) -> [String] {
        model.relations.filter { $0.from.name == table && SchemaProvisioner.holdsForeignKey($0) }
            .map { "\($0.fromColumns)->\($0.to.name)\($0.toColumns)" }.sorted()
    }
}
