import Foundation
import Logging
import Runtime
import TestSupport
import XCTest
@testable import Connectors
@testable import Tenancy

/// Uploaded SQL schemas: real `pg_dump --schema-only` output must read into the model live
/// introspection builds of the same database; hand-written DDL and hostile documents too.
final class UploadedSchemaTests: XCTestCase {
    static var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/rest-fixture.sql").path
    }

    static func pgDump(_ url: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["pg_dump", "--schema-only", url]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self)
    }

    /// What both sides must agree on; defaults lose the `public.` that pg_dump (run with an empty
    /// search_path) writes before sequence and type names.
    static func comparable(_ model: SchemaModel) -> JSONValue {
        .array(model.entities.map { entity in
            [
                "name": .string("\(entity.schema).\(entity.name)"), "kind": .string(entity.kind.rawValue),
                "comment": entity.comment.map(JSONValue.string) ?? .null,
                "pk": .array(entity.primaryKey.map(JSONValue.string)),
                "unique": .array(entity.uniqueKeys.map { .string($0.name + ":" + $0.columns.joined(separator: ",")) }),
                "writable": .array([.bool(entity.insertable), .bool(entity.updatable), .bool(entity.deletable)]),
                "indexes": .array(entity.indexes.map { .string("\($0.name):\($0.columns.joined(separator: ",")):\($0.unique)") }.sorted { $0.stringValue! < $1.stringValue! }),
                "columns": .array(entity.columns.map { column in
                    [
                        "name": .string(column.name), "type": .string(column.type.rawValue), "native": .string(column.nativeType),
                        "element": column.elementType.map { .string($0.rawValue) } ?? .null, "nullable": .bool(column.nullable),
                        "default": column.defaultExpression.map { .string($0.replacingOccurrences(of: "'public.", with: "'").replacingOccurrences(of: "::public.", with: "::")) } ?? .null,
                        "identity": .bool(column.isIdentity), "generated": .bool(column.isGenerated), "updatable": .bool(column.updatable),
                        "comment": column.comment.map(JSONValue.string) ?? .null, "enum": column.enumValues.map { .array($0.map(JSONValue.string)) } ?? .null,
                    ]
                }),
            ]
        })
    }

    func testPgDumpOfTheFixtureReadsLikeLiveIntrospection() async throws {
        let database = try await TestServices.freshDatabase(prefix: "upl")
        try TestServices.runScript(Self.fixture, database: database)
        let live = try await PostgresSource.introspect(url: try PostgresURL(database), schemas: ["public", "Extra"], logger: Logger(label: "test"))
        let dump = try Self.pgDump(database)
        let (parsed, warnings) = try SQLSchemaParser.parse(dump)

        XCTAssertEqual(parsed.entities.map(\.name), live.entities.map(\.name))
        for (mine, theirs) in zip(Self.comparable(parsed).arrayValue ?? [], Self.comparable(live).arrayValue ?? []) {
            guard mine != theirs, let mineObject = mine.objectValue, let theirObject = theirs.objectValue else { continue }
            for (key, value) in theirObject where mineObject[key] != value {
                if let columns = value.arrayValue, let myColumns = mineObject[key]?.arrayValue, columns.count == myColumns.count {
                    for (a, b) in zip(myColumns, columns) where a != b {
                        XCTFail("\(theirObject["name"]?.stringValue ?? "") column: parsed \(a.jsonString) live \(b.jsonString)")
                    }
                } else {
                    XCTFail("\(theirObject["name"]?.stringValue ?? "") \(key): parsed \(mineObject[key]?.jsonString ?? "nil") live \(value.jsonString)")
                }
            }
        }
        XCTAssertEqual(parsed.relations, live.relations)
        XCTAssertEqual(parsed.enums, live.enums)
        XCTAssertEqual(parsed.operations.map(\.name).sorted(), live.operations.map(\.name).sorted())
        for operation in live.operations {
            let mine = try XCTUnwrap(parsed.operation(named: operation.name))
            XCTAssertEqual(mine.arguments.map(\.name), operation.arguments.map(\.name), operation.name)
            XCTAssertEqual(mine.arguments.map(\.nativeType), operation.arguments.map(\.nativeType), operation.name)
            XCTAssertEqual(mine.arguments.map(\.hasDefault), operation.arguments.map(\.hasDefault), operation.name)
            XCTAssertEqual(mine.returnsSet, operation.returnsSet, operation.name)
            XCTAssertEqual(mine.returnsEntity, operation.returnsEntity, operation.name)
            XCTAssertEqual(mine.volatility, operation.volatility, operation.name)
        }
        // Sequences are modelled through their columns; nothing else of the dump is lost silently.
        XCTAssertTrue(warnings.allSatisfy { $0.contains("SEQUENCE") || $0.contains("SCHEMA") }, "\(warnings)")
    }

    func testHandWrittenDDL() throws {
        let (model, warnings) = try SQLSchemaParser.parse("""
            -- a comment; with a semicolon
            create type Mood as enum ('ok', 'it''s fine');
            CREATE TABLE "Teams" (id serial PRIMARY KEY, "Name" varchar(40) NOT NULL UNIQUE);
            create table members (
              id bigint generated always as identity,
              team_id int references "Teams" on delete cascade,
              email text not null,
              mood mood default 'ok',
              tags text[] default '{}'::text[],
              joined timestamptz default now(),
              score numeric(6,2) check (score >= 0),
              constraint members_pkey primary key (id),
              constraint members_email_team unique (team_id, email)
            );
            create table badges (id int primary key, name text);
            create table member_badges (
              member_id bigint references members (id), badge_id int references badges,
              primary key (member_id, badge_id)
            );
            CREATE INDEX members_joined ON members USING btree (joined DESC);
            comment on table members is 'People in teams';
            COMMENT ON COLUMN members.email IS 'login';
            create view active as select m.id, m.email from members m where m.score > 0;
            CREATE EXTENSION IF NOT EXISTS pgcrypto;
            """)
        XCTAssertEqual(model.entities.map(\.name), ["Teams", "active", "badges", "member_badges", "members"], "in byte order, as introspection lists them")
        let members = try XCTUnwrap(model.entity(named: "members"))
        XCTAssertEqual(members.primaryKey, ["id"])
        XCTAssertEqual(members.comment, "People in teams")
        XCTAssertEqual(members.column(named: "email")?.comment, "login")
        XCTAssertEqual(members.column(named: "id")?.isIdentity, true)
        XCTAssertEqual(members.column(named: "mood")?.type, .enumeration)
        XCTAssertEqual(members.column(named: "mood")?.enumValues, ["ok", "it's fine"])
        XCTAssertEqual(members.column(named: "tags")?.nativeType, "text[]")
        XCTAssertEqual(members.column(named: "tags")?.elementType, .string)
        XCTAssertEqual(members.column(named: "joined")?.nativeType, "timestamp with time zone")
        XCTAssertEqual(members.column(named: "score")?.nativeType, "numeric(6,2)")
        XCTAssertEqual(members.uniqueKeys, [UniqueKey(name: "members_email_team", columns: ["team_id", "email"])])
        XCTAssertEqual(members.indexes.map(\.name), ["members_joined", "members_pkey", "members_email_team"], "keys come with their indexes")
        let teams = try XCTUnwrap(model.entity(named: "Teams"))
        XCTAssertEqual(teams.column(named: "Name")?.nativeType, "character varying(40)")
        XCTAssertEqual(teams.column(named: "id")?.defaultExpression, #"nextval('"Teams_id_seq"'::regclass)"#)
        let kinds = Set(model.relations.map { "\($0.from.name)->\($0.to.name):\($0.kind.rawValue)" })
        XCTAssertTrue(kinds.contains("members->Teams:manyToOne"), "\(kinds)")
        XCTAssertTrue(kinds.contains("Teams->members:oneToMany"))
        XCTAssertTrue(kinds.contains("members->badges:manyToMany"), "the junction's two keys lie in its primary key")
        let memberTeam = try XCTUnwrap(model.relations.first { $0.from.name == "members" && $0.to.name == "Teams" })
        XCTAssertEqual(memberTeam.toColumns, ["id"], "REFERENCES without columns means the primary key")
        let view = try XCTUnwrap(model.entity(named: "active"))
        XCTAssertEqual(view.kind, .view)
        XCTAssertEqual(view.columns.map(\.name), ["id", "email"])
        XCTAssertEqual(view.column(named: "email")?.nativeType, "text")
        XCTAssertTrue(view.updatable, "a one-table view without grouping is updatable")
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("EXTENSION") && warnings[0].hasPrefix("line 24:"), warnings[0])
    }

    func testBadDocumentsFailWithWhere() {
        let cases: [(String, String)] = [
            ("create table t (id int,\n  name text default 'open", "line 2"),
            ("create table t (id int primary key, name)", "line 1, column 41"),
            ("create table t (id int) ; create table u (x int references)", "line 1"),
            ("create table \"\" (id int)", "zero-length"),
            ("create table t (id int default 1\0)", "NUL"),
        ]
        for (document, expected) in cases {
            XCTAssertThrowsError(try UploadedSchema.parse(document, format: .sql), document) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }

    func testHostileDocumentsDoNotCrashOrHang() throws {
        let deep = "create table t (id int default " + String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000) + ");"
        let (model, _) = try SQLSchemaParser.parse(deep)
        XCTAssertEqual(model.entities.first?.columns.first?.name, "id")
        let unbalanced = "create table t (id int default " + String(repeating: "(", count: 10_000) + ");"
        XCTAssertThrowsError(try SQLSchemaParser.parse(unbalanced))
        let many = (0..<2_000).map { "create table t\($0) (id int primary key, parent int references t\(max(0, $0 - 1)));" }.joined(separator: "\n")
        let (wide, _) = try SQLSchemaParser.parse(many)
        XCTAssertEqual(wide.entities.count, 2_000)
        let huge = String(repeating: "-- padding\n", count: (UploadedSchema.maxDocumentBytes / 11) + 10)
        XCTAssertThrowsError(try UploadedSchema.parse(huge, format: .sql)) { error in
            XCTAssertTrue("\(error)".contains("larger than"))
        }
        XCTAssertThrowsError(try UploadedSchema.parse("{}", format: .prisma))
        // Documents that stop in the middle of a statement end in an error, never past the end.
        for truncated in [
            "create index", "create view v", "create table t (a int references b", "create table t (a int generated always as identity",
            "create table t (a int references b on delete set", "create unique", "alter table", "comment on column", "create type t as enum (",
            "create function f(", "create table t (a numeric(", "create table t (a int[",
        ] {
            _ = try? SQLSchemaParser.parse(truncated)
        }
        for truncated in ["model A { id", "model A {\n  id Int @default(", "enum E {", "model", "model A { id Int @relation(fields: ["] {
            XCTAssertThrowsError(try UploadedSchema.parse(truncated, format: .prisma), truncated)
        }
        XCTAssertThrowsError(try UploadedSchema.parse("create table t (a text default 'x\0y')", format: .sql)) { error in
            XCTAssertTrue("\(error)".contains("NUL"))
        }
    }

    func testProvisioningRefusesWhatItCannotGenerateSafely() throws {
        let provisioner = SchemaProvisioner(url: try PostgresURL("postgresql://x@127.0.0.1:1/x"), schema: "acme_main", logger: Logger(label: "test"))
        let unsafeDefault = try SQLSchemaParser.parse("create table t (id int primary key, v text default pg_read_file('/etc/passwd'));").model
        XCTAssertThrowsError(try provisioner.statements(for: unsafeDefault)) { error in
            XCTAssertTrue("\(error)".contains("t.v"), "\(error)")
        }
        let unknownType = try SQLSchemaParser.parse("create table t (id int primary key, v geometry);").model
        XCTAssertThrowsError(try provisioner.statements(for: unknownType))
        let injection = try SQLSchemaParser.parse(#"create table "x""); drop table y; --" (id int primary key, "a""b" text default 'it''s');"#).model
        let statements = try provisioner.statements(for: injection).statements
        XCTAssertTrue(statements.contains { $0.contains(#"CREATE TABLE "acme_main"."x""); drop table y; --" ("id" integer NOT NULL, "a""b" text DEFAULT 'it''s', PRIMARY KEY ("id"))"#) }, "\(statements)")
    }
}

/// Prisma schemas, as Prisma Migrate would lay them out on PostgreSQL.
final class PrismaSchemaTests: XCTestCase {
    static var shop: String {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/uploads/shop.prisma").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    func testARealisticSchema() throws {
        let parsed = try UploadedSchema.parse(Self.shop, format: .prisma)
        let model = parsed.model
        XCTAssertEqual(model.entities.count, 25, "22 models and 3 implicit join tables: \(model.entities.map(\.name))")
        for name in ["users", "profiles", "Session", "Order", "audit_events", "_CategoryToProduct", "_Wishlist", "_DiscountToProduct"] {
            XCTAssertNotNil(model.entity(named: name), name)
        }
        let users = try XCTUnwrap(model.entity(named: "users"))
        XCTAssertEqual(users.comment, "People who buy things")
        XCTAssertEqual(users.column(named: "email")?.nativeType, "character varying(255)")
        XCTAssertEqual(users.column(named: "email")?.comment, "used to sign in")
        XCTAssertEqual(users.column(named: "created_at")?.nativeType, "timestamp(3) without time zone")
        XCTAssertEqual(users.column(named: "created_at")?.defaultExpression, "CURRENT_TIMESTAMP")
        XCTAssertEqual(users.column(named: "role")?.enumValues, ["CUSTOMER", "STAFF", "ADMIN"])
        XCTAssertEqual(users.column(named: "role")?.defaultExpression, "'CUSTOMER'::\"Role\"")
        XCTAssertEqual(users.column(named: "name")?.nullable, true)
        XCTAssertEqual(users.column(named: "id")?.defaultExpression, "nextval('users_id_seq'::regclass)")
        XCTAssertEqual(users.uniqueKeys, [UniqueKey(name: "users_email_key", columns: ["email"])])
        XCTAssertNil(users.column(named: "profile"), "relation fields are not columns")

        let product = try XCTUnwrap(model.entity(named: "Product"))
        XCTAssertEqual(product.column(named: "price")?.nativeType, "numeric(10,2)")
        XCTAssertEqual(product.column(named: "tags")?.nativeType, "text[]")
        XCTAssertEqual(product.column(named: "attributes")?.nativeType, "jsonb")
        XCTAssertEqual(model.entity(named: "Session")?.column(named: "id")?.defaultExpression, "gen_random_uuid()")
        XCTAssertEqual(model.entity(named: "CartItem")?.primaryKey, ["cartId", "productId"])
        XCTAssertEqual(model.entity(named: "Order")?.column(named: "status")?.enumValues, ["PENDING", "PAID", "SHIPPED", "canceled"])
        XCTAssertNil(model.entity(named: "Order")?.column(named: "number")?.defaultExpression, "cuid() is made by Prisma's client")
        XCTAssertTrue(parsed.warnings.contains { $0.contains("cuid") }, "\(parsed.warnings)")

        let relations = Set(model.relations.map { "\($0.from.name)->\($0.to.name):\($0.kind.rawValue)" })
        for expected in [
            "Order->users:manyToOne", "users->Order:oneToMany", "profiles->users:oneToOne", "users->profiles:oneToOne",
            "Payment->Order:oneToOne", "Category->Category:manyToOne", "Product->Category:manyToMany", "Category->Product:manyToMany",
            "users->Product:manyToMany", "Order->Coupon:manyToOne", "CartItem->Cart:manyToOne",
        ] {
            XCTAssertTrue(relations.contains(expected), "\(expected) missing from \(relations.sorted())")
        }
        let coupon = try XCTUnwrap(model.relations.first { $0.from.name == "Order" && $0.to.name == "Coupon" })
        XCTAssertEqual(coupon.fromColumns, ["couponCode"])
        XCTAssertEqual(coupon.toColumns, ["code"])
        XCTAssertEqual(coupon.constraint, "Order_couponCode_fkey")
    }

    func testBadPrismaSaysWhere() {
        let cases: [(String, String)] = [
            ("model A {\n  id Int @id\n", "not closed"),
            ("model A {\n  id Int @id %\n}", "line 2"),
            ("modle A {}", "line 1, column 1"),
            ("model A {\n  b B @relation(fields: [x, y], references: [id])\n  x Int\n}\nmodel B {\n  id Int @id\n}", "as many fields"),
        ]
        for (document, expected) in cases {
            XCTAssertThrowsError(try UploadedSchema.parse(document, format: .prisma), document) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }
}

/// JSON Schema and OpenAPI documents: object schemas as tables, `$ref`s as foreign keys.
final class JSONSchemaUploadTests: XCTestCase {
    static func fixture(_ name: String) -> String {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/uploads/\(name)").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    func checkLibrary(_ model: SchemaModel) throws {
        XCTAssertEqual(model.entities.count, 23, "\(model.entities.map(\.name))")
        let book = try XCTUnwrap(model.entity(named: "Book"))
        XCTAssertEqual(book.primaryKey, ["id"])
        XCTAssertEqual(book.column(named: "id")?.nativeType, "bigint")
        XCTAssertEqual(book.column(named: "isbn")?.nativeType, "character varying(17)")
        XCTAssertEqual(book.column(named: "tags")?.nativeType, "text[]")
        XCTAssertEqual(book.column(named: "author_id")?.nativeType, "uuid", "a reference takes the target's key type")
        XCTAssertEqual(book.column(named: "author_id")?.nullable, false, "author is required")
        XCTAssertEqual(book.column(named: "publisher_id")?.nullable, true)
        XCTAssertEqual(book.column(named: "language")?.enumValues, ["en", "fr", "de"])
        XCTAssertEqual(book.column(named: "metadata")?.nativeType, "jsonb")
        XCTAssertEqual(book.column(named: "series_id")?.nativeType, "integer", "Series.books points back from Book")
        let author = try XCTUnwrap(model.entity(named: "Author"))
        XCTAssertEqual(author.column(named: "createdAt")?.nativeType, "timestamp with time zone", "allOf merged")
        XCTAssertEqual(author.column(named: "createdAt")?.nullable, false)
        XCTAssertEqual(author.column(named: "country")?.enumValues, ["FR", "DE", "US", "JP"])
        XCTAssertEqual(model.enums.filter { $0.name == "Country" }.count, 1, "one enum type for every use of #/…/Country")
        XCTAssertEqual(model.entity(named: "Publisher")?.column(named: "website")?.nullable, true)
        XCTAssertEqual(model.entity(named: "Member")?.column(named: "active")?.defaultExpression, "true")
        XCTAssertEqual(model.entity(named: "Shelf")?.column(named: "capacity")?.defaultExpression, "100")
        XCTAssertEqual(model.entity(named: "Tag")?.primaryKey, ["name"])
        XCTAssertEqual(model.entity(named: "Copy")?.primaryKey, ["barcode"])
        XCTAssertEqual(model.entity(named: "Library")?.column(named: "name")?.nativeType, "character varying(120)")
        let relations = Set(model.relations.map { "\($0.from.name)->\($0.to.name):\($0.kind.rawValue)" })
        for expected in ["Book->Author:manyToOne", "Author->Book:oneToMany", "Shelf->Library:manyToOne", "Loan->Member:manyToOne",
                         "Genre->Genre:manyToOne", "Copy->Book:manyToOne", "Fine->Loan:manyToOne"] {
            XCTAssertTrue(relations.contains(expected), "\(expected) missing from \(relations.sorted())")
        }
        let provisioner = SchemaProvisioner(url: try PostgresURL("postgresql://x@127.0.0.1:1/x"), schema: "lib_main", logger: Logger(label: "test"))
        XCTAssertNoThrow(try provisioner.statements(for: model), "everything read can be provisioned")
    }

    func testJSONSchema() throws {
        let parsed = try UploadedSchema.parse(Self.fixture("library.schema.json"), format: .jsonschema)
        try checkLibrary(parsed.model)
        XCTAssertTrue(parsed.warnings.contains { $0.hasPrefix("/$defs/Book/properties/metadata") }, "\(parsed.warnings)")
        XCTAssertTrue(parsed.model.operations.isEmpty)
    }

    func testOpenAPI() throws {
        let parsed = try UploadedSchema.parse(Self.fixture("library.openapi.json"), format: .openapi)
        try checkLibrary(parsed.model)
        let operations = Dictionary(uniqueKeysWithValues: parsed.model.operations.map { ($0.name, $0) })
        XCTAssertEqual(operations.keys.sorted(), ["createBook", "deleteBooksId", "getBook", "getMembersIdLoans", "listBooks"])
        XCTAssertEqual(operations["listBooks"]?.returnsEntity?.name, "Book")
        XCTAssertEqual(operations["listBooks"]?.returnsSet, true)
        XCTAssertEqual(operations["listBooks"]?.arguments.map(\.name), ["limit", "author"])
        XCTAssertEqual(operations["getBook"]?.arguments.map(\.name), ["id"])
        XCTAssertEqual(operations["getBook"]?.arguments.first?.hasDefault, false)
        XCTAssertEqual(operations["createBook"]?.arguments.map(\.name), ["body"])
        XCTAssertEqual(operations["getMembersIdLoans"]?.returnsEntity?.name, "Loan")
    }

    func testBadDocumentsPointAtTheProblem() {
        let cases: [(String, UploadedSchema.Format, String)] = [
            ("{not json", .jsonschema, "not valid JSON"),
            (##"{"$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/Missing"}}}}}"##, .jsonschema, "/$defs/A/properties/b"),
            (##"{"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}}"##, .jsonschema, "cycle"),
            (##"{"$defs": {"A": {"type": "object", "properties": {"b": 3}}}}"##, .jsonschema, "/$defs/A/properties/b"),
            (##"{"$defs": {}}"##, .jsonschema, "no object schemas"),
            (##"{"swagger": "2.0"}"##, .openapi, "/openapi"),
            (##"{"$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "https://evil.example/x.json"}}}}}"##, .jsonschema, "inside the document"),
        ]
        for (document, format, expected) in cases {
            XCTAssertThrowsError(try UploadedSchema.parse(document, format: format), document) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
        let deep = "{\"$defs\": {\"A\": " + String(repeating: "{\"a\": ", count: 2_000) + "1" + String(repeating: "}", count: 2_000) + "}}"
        XCTAssertThrowsError(try UploadedSchema.parse(deep, format: .jsonschema))
        // Wide fan-out: 14 levels of 50 references each would be 50^14 visits.
        var definitions: [String] = []
        for level in 0..<14 {
            let refs = Array(repeating: "{\"$ref\": \"#/$defs/D\(level + 1)\"}", count: 50).joined(separator: ",")
            definitions.append("\"D\(level)\": {\"allOf\": [\(refs)]}")
        }
        definitions.append("\"D14\": {\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}}}")
        let wide = "{\"$defs\": {" + definitions.joined(separator: ",") + "}}"
        XCTAssertThrowsError(try UploadedSchema.parse(wide, format: .jsonschema)) { error in
            XCTAssertTrue("\(error)".contains("expands"), "\(error)")
        }
    }
}
