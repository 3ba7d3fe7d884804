import Logging
import PostgresNIO
import Runtime

/// Reads a PostgreSQL database's model from the catalogs with five queries in all — relations
/// with their columns, constraints, indexes, enums, functions — whatever the number of tables.
/// Each query returns one JSON document, parsed with our own parser.
public struct PostgresIntrospector: Sendable {
    public let schemas: [String]

    public init(schemas: [String]) {
        self.schemas = schemas
    }

    public func introspect(_ client: PostgresClient, logger: Logger) async throws -> SchemaModel {
        try await client.withConnection { connection in
            try await introspect(connection, logger: logger)
        }
    }

    public func introspect(_ connection: PostgresConnection, logger: Logger) async throws -> SchemaModel {
        func document(_ sql: String) async throws -> String {
            var query = PostgresQuery(unsafeSQL: sql)
            query.binds.append(schemas)
            let rows = try await connection.query(query, logger: logger)
            var document = "[]"
            for try await text in rows.decode(String.self) { document = text }
            return document
        }
        let relations = try await document(Self.relationsSQL)
        let constraints = try await document(Self.constraintsSQL)
        let indexes = try await document(Self.indexesSQL)
        let enums = try await document(Self.enumsSQL)
        let functions = try await document(Self.functionsSQL)
        let schemaComments = try await document(Self.schemaCommentsSQL)
        // Seconds of parsing and building for ten thousand tables: not on an event loop.
        return try await offloaded {
            func parsed(_ text: String) throws -> [JSONValue] { try JSONValue.parse(Array(text.utf8)).arrayValue ?? [] }
            var model = ModelBuilder(
                relations: try parsed(relations), constraints: try parsed(constraints), indexes: try parsed(indexes),
                enums: try parsed(enums), functions: try parsed(functions)
            ).build()
            let comments = (try JSONValue.parse(Array(schemaComments.utf8)).objectValue ?? [:]).compactMap { key, value in
                value.stringValue.map { (key, $0) }
            }
            model.schemaComments = comments.isEmpty ? nil : Dictionary(comments, uniquingKeysWith: { first, _ in first })
            return model
        }
    }

    /// The schemas that exist among `schemas`, to name missing ones in an error.
    public func missingSchemas(_ connection: PostgresConnection, logger: Logger) async throws -> [String] {
        var query = PostgresQuery(unsafeSQL: "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
        query.binds.append(schemas)
        var found = Set<String>()
        for try await name in try await connection.query(query, logger: logger).decode(String.self) { found.insert(name) }
        return schemas.filter { !found.contains($0) }
    }

    static let relationsSQL = """
        SELECT coalesce(json_agg(r), '[]')::text FROM (
          SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
                 obj_description(c.oid, 'pg_class') AS comment,
                 CASE WHEN c.relkind IN ('r', 'p') THEN 28 ELSE pg_relation_is_updatable(c.oid::regclass, false) END AS updatable_mask,
                 (SELECT coalesce(json_agg(json_build_object(
                      'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                      'typtype', t.typtype::text, 'category', t.typcategory::text, 'typname', t.typname,
                      'elemcategory', et.typcategory::text, 'elemtyptype', et.typtype::text, 'elemname', et.typname,
                      'notnull', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid),
                      'identity', a.attidentity <> '', 'generated', a.attgenerated <> '',
                      'updatable', CASE WHEN c.relkind IN ('r', 'p') THEN a.attgenerated = '' ELSE pg_column_is_updatable(c.oid::regclass, a.attnum, false) END,
                      'comment', col_description(c.oid, a.attnum)) ORDER BY a.attnum), '[]')
                  FROM pg_attribute a
                  JOIN pg_type t ON t.oid = a.atttypid
                  LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
                  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'v', 'm', 'f', 'p') AND NOT c.relispartition
          ORDER BY n.nspname, c.relname
        ) r
        """

    static let constraintsSQL = """
        SELECT coalesce(json_agg(json_build_object(
          'schema', n.nspname, 'table', c.relname, 'name', con.conname, 'type', con.contype::text,
          'columns', (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum),
          'fschema', fn.nspname, 'ftable', fc.relname, 'comment', obj_description(con.oid, 'pg_constraint'),
          'fcolumns', (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum)
        ) ORDER BY n.nspname, c.relname, con.conname), '[]')::text
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class fc ON fc.oid = con.confrelid LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
        WHERE con.contype IN ('p', 'u', 'f') AND n.nspname = ANY($1)
        """

    static let indexesSQL = """
        SELECT coalesce(json_agg(json_build_object(
          'schema', n.nspname, 'table', c.relname, 'name', ic.relname, 'unique', i.indisunique, 'method', am.amname,
          'columns', (SELECT json_agg(coalesce(a.attname::text, pg_get_indexdef(i.indexrelid, k.ord::int, true)) ORDER BY k.ord)
                      FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
        ) ORDER BY n.nspname, c.relname, ic.relname), '[]')::text
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = ic.relam
        WHERE n.nspname = ANY($1)
        """

    static let enumsSQL = """
        SELECT coalesce(json_agg(json_build_object(
          'schema', n.nspname, 'name', t.typname,
          'values', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
          'comment', obj_description(t.oid, 'pg_type')
        ) ORDER BY n.nspname, t.typname), '[]')::text
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'e' AND n.nspname = ANY($1)
        """

    static let functionsSQL = """
        SELECT coalesce(json_agg(json_build_object(
          'schema', n.nspname, 'name', p.proname, 'retset', p.proretset,
          'rettype', format_type(p.prorettype, NULL), 'rettyptype', rt.typtype::text, 'retcategory', rt.typcategory::text,
          'retrelschema', rn.nspname, 'retrelname', rc.relname,
          'volatility', p.provolatile::text, 'comment', obj_description(p.oid, 'pg_proc'),
          'ndefaults', p.pronargdefaults, 'argnames', p.proargnames, 'argmodes', p.proargmodes,
          'argtypes', (SELECT coalesce(json_agg(format_type(x, NULL) ORDER BY o), '[]') FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(x, o)),
          'argcategories', (SELECT coalesce(json_agg(ty.typcategory::text ORDER BY o), '[]') FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(x, o) JOIN pg_type ty ON ty.oid = u.x)
        ) ORDER BY n.nspname, p.proname), '[]')::text
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_type rt ON rt.oid = p.prorettype
        LEFT JOIN pg_class rc ON rc.oid = rt.typrelid AND rt.typtype = 'c' LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE n.nspname = ANY($1) AND p.prokind = 'f'
        """

    /// `{schema: comment}` for the introspected schemas that have one.
    static let schemaCommentsSQL = """
        SELECT coalesce(json_object_agg(nspname, obj_description(oid, 'pg_namespace'))
          FILTER (WHERE obj_description(oid, 'pg_namespace') IS NOT NULL), '{}')::text
        FROM pg_namespace WHERE nspname = ANY($1)
        """
}
