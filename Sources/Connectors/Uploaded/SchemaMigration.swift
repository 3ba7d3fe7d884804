import Runtime

/// What re-uploading a provisioned schema changes: additive steps (new tables, columns, enum
/// labels, keys, indexes, foreign keys; relaxed NOT NULL) are applied; steps that lose data or
/// rewrite it (dropped tables or columns, changed types or primary keys) are applied only when the
/// caller says `allowDestructive`. Enum labels are never removed: PostgreSQL cannot.
public struct SchemaMigration: Sendable {
    public var statements: [String] = []
    /// Every change, in words, for the answer and the audit log.
    public var changes: [String] = []
    /// The changes that lose or rewrite data.
    public var destructive: [String] = []
    public var warnings: [String] = []

    /// `current`: the model introspected from the provisioned schema; `wanted`: the new upload.
    public static func plan(from current: SchemaModel, to wanted: SchemaModel, provisioner: SchemaProvisioner) throws(SchemaProvisioner.Refusal) -> SchemaMigration {
        var migration = SchemaMigration()
        let schema = provisioner.schema
        let enums = Set(wanted.enums.map(\.name))
        let quotedSchema = SchemaProvisioner.quote(schema)
        func table(_ name: String) -> String { "\(quotedSchema).\(SchemaProvisioner.quote(name))" }

        for item in wanted.enums {
            guard let existing = current.enums.first(where: { $0.name == item.name }) else {
                let labels = item.values.map(SchemaProvisioner.literal).joined(separator: ", ")
                migration.statements.append("CREATE TYPE \(table(item.name)) AS ENUM (\(labels))")
                migration.changes.append("new enum \(item.name)")
                continue
            }
            let removed = existing.values.filter { !item.values.contains($0) }
            guard removed.isEmpty else {
                throw SchemaProvisioner.Refusal(message: "enum \(item.name) would lose \(removed.joined(separator: ", ")); PostgreSQL cannot remove enum labels")
            }
            for label in item.values where !existing.values.contains(label) {
                migration.statements.append("ALTER TYPE \(table(item.name)) ADD VALUE IF NOT EXISTS \(SchemaProvisioner.literal(label))")
                migration.changes.append("enum \(item.name) gains \(label)")
            }
        }

        let currentTables = Dictionary(current.entities.filter { $0.kind == .table }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let wantedTables = wanted.entities.filter { $0.kind == .table }
        for entity in wantedTables {
            guard let existing = currentTables[entity.name] else {
                migration.statements += try provisioner.tableStatements(entity, enums: enums, warnings: &migration.warnings)
                migration.changes.append("new table \(entity.name)")
                continue
            }
            for column in entity.columns {
                guard let old = existing.column(named: column.name) else {
                    migration.statements.append("ALTER TABLE \(table(entity.name)) ADD COLUMN \(try provisioner.columnDefinition(column, of: entity, enums: enums))")
                    migration.changes.append("new column \(entity.name).\(column.name)")
                    continue
                }
                let wantedType = try SchemaProvisioner.safeType(column.nativeType, enums: enums, schema: schema, column: column.name)
                if normalized(old.nativeType, schema: schema) != normalized(wantedType, schema: schema) {
                    migration.statements.append(
                        "ALTER TABLE \(table(entity.name)) ALTER COLUMN \(SchemaProvisioner.quote(column.name)) TYPE \(wantedType) USING \(SchemaProvisioner.quote(column.name))::\(wantedType)")
                    migration.destructive.append("\(entity.name).\(column.name) changes type from \(old.nativeType) to \(column.nativeType)")
                }
                if old.nullable && !column.nullable {
                    migration.statements.append("ALTER TABLE \(table(entity.name)) ALTER COLUMN \(SchemaProvisioner.quote(column.name)) SET NOT NULL")
                    migration.changes.append("\(entity.name).\(column.name) becomes NOT NULL")
                } else if !old.nullable && column.nullable && !entity.primaryKey.contains(column.name) {
                    migration.statements.append("ALTER TABLE \(table(entity.name)) ALTER COLUMN \(SchemaProvisioner.quote(column.name)) DROP NOT NULL")
                    migration.changes.append("\(entity.name).\(column.name) becomes nullable")
                }
            }
            for old in existing.columns where entity.column(named: old.name) == nil {
                migration.statements.append("ALTER TABLE \(table(entity.name)) DROP COLUMN \(SchemaProvisioner.quote(old.name))")
                migration.destructive.append("column \(entity.name).\(old.name) is dropped")
            }
            if Set(existing.primaryKey) != Set(entity.primaryKey) {
                migration.destructive.append("table \(entity.name) changes its primary key")
                migration.warnings.append("primary key changes of \(entity.name) are not migrated; recreate the source")
            }
            for key in entity.uniqueKeys where !existing.uniqueKeys.contains(where: { $0.columns == key.columns }) {
                migration.statements.append(
                    "ALTER TABLE \(table(entity.name)) ADD CONSTRAINT \(SchemaProvisioner.quote(key.name)) UNIQUE (\(key.columns.map(SchemaProvisioner.quote).joined(separator: ", ")))")
                migration.changes.append("new unique key \(key.name)")
            }
            for key in existing.uniqueKeys where !entity.uniqueKeys.contains(where: { $0.columns == key.columns }) {
                migration.statements.append("ALTER TABLE \(table(entity.name)) DROP CONSTRAINT \(SchemaProvisioner.quote(key.name))")
                migration.changes.append("unique key \(key.name) dropped")
            }
            let oldIndexes = SchemaProvisioner.ownIndexes(existing)
            for index in SchemaProvisioner.ownIndexes(entity) where !oldIndexes.contains(where: { $0.columns == index.columns && $0.unique == index.unique }) {
                guard index.columns.allSatisfy({ entity.column(named: $0) != nil }) else { continue }
                migration.statements.append(provisioner.indexStatement(index, on: entity))
                migration.changes.append("new index \(index.name)")
            }
            for index in oldIndexes where !SchemaProvisioner.ownIndexes(entity).contains(where: { $0.columns == index.columns && $0.unique == index.unique }) {
                migration.statements.append("DROP INDEX \(table(index.name))")
                migration.changes.append("index \(index.name) dropped")
            }
        }
        let wantedNames = Set(wantedTables.map(\.name))
        for name in currentTables.keys.sorted() where !wantedNames.contains(name) {
            migration.statements.append("DROP TABLE \(table(name)) CASCADE")
            migration.destructive.append("table \(name) is dropped")
        }

        // Foreign keys by their columns and target, whatever they are named.
        func signature(_ relation: Relation) -> String {
            "\(relation.from.name)(\(relation.fromColumns.joined(separator: ",")))->\(relation.to.name)(\(relation.toColumns.joined(separator: ",")))"
        }
        let oldKeys = current.relations.filter(SchemaProvisioner.holdsForeignKey)
        let newKeys = wanted.relations.filter(SchemaProvisioner.holdsForeignKey)
        for relation in newKeys where !oldKeys.contains(where: { signature($0) == signature(relation) }) {
            guard let statement = provisioner.foreignKeyStatement(relation) else { continue }
            migration.statements.append(statement)
            migration.changes.append("new foreign key \(signature(relation))")
        }
        for relation in oldKeys where !newKeys.contains(where: { signature($0) == signature(relation) }) && wantedNames.contains(relation.from.name) {
            migration.statements.append("ALTER TABLE \(table(relation.from.name)) DROP CONSTRAINT \(SchemaProvisioner.quote(relation.constraint))")
            migration.changes.append("foreign key \(signature(relation)) dropped")
        }
        migration.changes += migration.destructive
        return migration
    }

    /// A type name without quotes and without this schema's (or public's) qualification.
    static func normalized(_ native: String, schema: String) -> String {
        var text = native.replacingOccurrences(of: "\"", with: "")
        for prefix in ["\(schema).", "public."] where text.hasPrefix(prefix) { text.removeFirst(prefix.count) }
        return text
    }
}
