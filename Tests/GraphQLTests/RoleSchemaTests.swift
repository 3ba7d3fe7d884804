import Foundation
import Connectors
import Runtime
import Tenancy
import XCTest

@testable import GraphQL

/// The contract's blog fixture as a model: authors, posts (enum status, json meta), comments,
/// profiles (one-to-one), tags through post_tags (many-to-many).
enum BlogModel {
    static func column(_ name: String, _ type: PortableType, _ native: String, nullable: Bool = false) -> Column {
        Column(name: name, type: type, nativeType: native, nullable: nullable)
    }

    static func entity(_ name: String, _ columns: [Column], key: [String] = ["id"], kind: Entity.Kind = .table) -> Entity {
        Entity(schema: "public", name: name, kind: kind, columns: columns, primaryKey: key)
    }

    static func name(_ entity: String) -> EntityName { EntityName(schema: "public", name: entity) }

    static let model: SchemaModel = {
        var status = column("status", .enumeration, "public.post_status")
        status.enumValues = ["draft", "published"]
        let entities = [
            entity("authors", [column("id", .integer, "integer"), column("name", .string, "text"), column("karma", .bigint, "bigint"), column("rating", .number, "numeric", nullable: true)]),
            entity("posts", [column("id", .integer, "integer"), column("author_id", .integer, "integer"), column("title", .string, "text"), status,
                             column("meta", .json, "jsonb", nullable: true), column("secret_note", .string, "text", nullable: true)]),
            entity("comments", [column("id", .integer, "integer"), column("post_id", .integer, "integer"), column("body", .string, "text")]),
            entity("profiles", [column("author_id", .integer, "integer"), column("bio", .string, "text", nullable: true)], key: ["author_id"]),
            entity("tags", [column("id", .integer, "integer"), column("name", .string, "text")]),
            entity("post_tags", [column("post_id", .integer, "integer"), column("tag_id", .integer, "integer")], key: ["post_id", "tag_id"]),
            entity("post_counts", [column("author_id", .integer, "integer"), column("n", .bigint, "bigint")], key: [], kind: .view),
        ]
        let relations = [
            Relation(constraint: "posts_author_id_fkey", kind: .manyToOne, from: name("posts"), fromColumns: ["author_id"], to: name("authors"), toColumns: ["id"]),
            Relation(constraint: "posts_author_id_fkey", kind: .oneToMany, from: name("authors"), fromColumns: ["id"], to: name("posts"), toColumns: ["author_id"]),
            Relation(constraint: "comments_post_id_fkey", kind: .manyToOne, from: name("comments"), fromColumns: ["post_id"], to: name("posts"), toColumns: ["id"]),
            Relation(constraint: "comments_post_id_fkey", kind: .oneToMany, from: name("posts"), fromColumns: ["id"], to: name("comments"), toColumns: ["post_id"]),
            Relation(constraint: "profiles_author_id_fkey", kind: .oneToOne, from: name("authors"), fromColumns: ["id"], to: name("profiles"), toColumns: ["author_id"]),
            Relation(constraint: "post_tags_tag_id_fkey", kind: .manyToMany, from: name("posts"), fromColumns: ["id"], to: name("tags"), toColumns: ["id"],
                     junction: .init(entity: name("post_tags"), fromConstraint: "post_tags_post_id_fkey", fromColumns: ["post_id"], toColumns: ["tag_id"])),
        ]
        return SchemaModel(entities: entities, relations: relations, enums: [EnumType(schema: "public", name: "post_status", values: ["draft", "published"])])
    }()

    static func policies(_ json: String) throws -> [Policy] {
        try PolicyParser.parse(document: JSONValue.parse(Array(json.utf8)))
    }
}

final class RoleSchemaTests: XCTestCase {
    func testNamesFollowPgGraphqlWithAndWithoutInflection() {
        let plain = GraphQLNaming(inflect: false)
        XCTAssertEqual(plain.typeName("blog_post"), "blog_post")
        XCTAssertEqual(plain.collectionField("blog_post"), "blog_postCollection")
        XCTAssertEqual(plain.insertField(plain.typeName("blog_post")), "insertIntoblog_postCollection")
        XCTAssertEqual(plain.updateField("posts"), "updatepostsCollection")
        XCTAssertEqual(plain.deleteField("posts"), "deleteFrompostsCollection")
        XCTAssertEqual(plain.fieldName("author_id"), "author_id")
        let inflected = GraphQLNaming(inflect: true)
        XCTAssertEqual(inflected.typeName("blog_post"), "BlogPost")
        XCTAssertEqual(inflected.collectionField("blog_post"), "blogPostCollection")
        XCTAssertEqual(inflected.insertField(inflected.typeName("blog_post")), "insertIntoBlogPostCollection")
        XCTAssertEqual(inflected.fieldName("created_at"), "createdAt")
        XCTAssertEqual(inflected.byPkField("blog_post"), "blogPostByPk")
        let toAuthor = BlogModel.model.relations[0]
        XCTAssertEqual(plain.relationField(toAuthor, targetEntity: "authors"), "authors")
        XCTAssertEqual(inflected.relationField(toAuthor, targetEntity: "authors"), "author")
        XCTAssertEqual(plain.relationField(BlogModel.model.relations[3], targetEntity: "comments"), "commentsCollection")
        XCTAssertFalse(GraphQLNaming.isValid("__secret"))
        XCTAssertFalse(GraphQLNaming.isValid("has space"))
        XCTAssertFalse(GraphQLNaming.isValid("1st"))
        XCTAssertTrue(GraphQLNaming.isValid("_ok1"))
    }

    func testTheServiceRoleSeesTheContractsBlogSchema() {
        let schema = RoleSchemaBuilder(model: BlogModel.model, access: .service, naming: GraphQLNaming(inflect: false)).build()
        let posts = schema.types["posts"]!
        XCTAssertEqual(posts.fields.map(\.name), ["nodeId", "id", "author_id", "title", "status", "meta", "secret_note", "authors", "commentsCollection", "tagsCollection"])
        XCTAssertEqual(posts.field("status")?.type.description, "post_status!")
        XCTAssertEqual(posts.field("meta")?.type.description, "JSON")
        XCTAssertEqual(posts.field("authors")?.type.description, "authors!")
        XCTAssertEqual(posts.field("commentsCollection")?.type.description, "commentsConnection")
        XCTAssertEqual(posts.interfaces, ["Node"])
        let authors = schema.types["authors"]!
        XCTAssertEqual(authors.field("karma")?.type.description, "BigInt!")
        XCTAssertEqual(authors.field("rating")?.type.description, "BigFloat")
        XCTAssertEqual(authors.field("profiles")?.type.description, "profiles")
        XCTAssertEqual(authors.field("postsCollection")?.type.description, "postsConnection")
        let query = schema.types["Query"]!
        XCTAssertEqual(query.field("postsCollection")?.arguments.map(\.name), ["first", "last", "before", "after", "offset", "filter", "orderBy"])
        XCTAssertEqual(query.field("postsByPk")?.arguments.map(\.name), ["id"])
        XCTAssertNil(query.field("post_countsCollection"), "a view without a key is left out")
        XCTAssertTrue(schema.warnings.contains { $0.contains("post_counts") })
        let mutation = schema.types["Mutation"]!
        XCTAssertEqual(mutation.field("updatepostsCollection")?.arguments.map(\.name), ["set", "filter", "atMost"])
        XCTAssertEqual(mutation.field("updatepostsCollection")?.arguments.last?.defaultValue, "1")
        XCTAssertEqual(schema.types["postsFilter"]?.inputFields.map(\.name), ["nodeId", "id", "author_id", "title", "status", "secret_note", "and", "or", "not"])
        XCTAssertEqual(schema.types["postsOrderBy"]?.inputFields.map(\.name), ["id", "author_id", "title", "status", "secret_note"])
        XCTAssertEqual(schema.types["Node"]?.possibleTypes.sorted(), ["authors", "comments", "post_tags", "posts", "profiles", "tags"])
    }

    func testAnonSeesOnlyWhatItsPoliciesAllow() throws {
        let policies = try BlogModel.policies(#"""
            {"policies": [
              {"entity": "posts", "role": "anon", "action": "read", "columns": ["id", "author_id", "title", "status"], "when": {"status": {"eq": "published"}}},
              {"entity": "authors", "role": "anon", "action": "read", "columns": ["id", "name"]}
            ]}
            """#)
        let access = Access(role: "anon", claims: [:], policies: policies)
        let schema = RoleSchemaBuilder(model: BlogModel.model, access: access, naming: GraphQLNaming(inflect: false)).build()
        XCTAssertEqual(schema.types["posts"]?.fields.map(\.name), ["nodeId", "id", "author_id", "title", "status", "authors"])
        XCTAssertEqual(schema.types["authors"]?.fields.map(\.name), ["nodeId", "id", "name", "postsCollection"])
        XCTAssertNil(schema.types["comments"])
        XCTAssertNil(schema.mutationType)
        XCTAssertNil(schema.types["Mutation"])
        // Authors are read whole-row: the to-one stays non-null. Posts are filtered: no promise.
        XCTAssertEqual(schema.types["posts"]?.field("authors")?.type.description, "authors!")
        XCTAssertEqual(schema.types["postsFilter"]?.inputFields.map(\.name), ["nodeId", "id", "author_id", "title", "status", "and", "or", "not"])

        let writer = try BlogModel.policies(#"""
            {"policies": [
              {"entity": "posts", "role": "authenticated", "action": "read"},
              {"entity": "posts", "role": "authenticated", "action": "update", "columns": ["title"]},
              {"entity": "authors", "role": "authenticated", "action": "read", "when": {"id": {"eq": {"var": "auth.uid"}}}}
            ]}
            """#)
        let authenticated = RoleSchemaBuilder(
            model: BlogModel.model, access: Access(role: "authenticated", claims: ["sub": "1"], policies: writer), naming: GraphQLNaming(inflect: false)
        ).build()
        XCTAssertEqual(authenticated.types["Mutation"]?.fields.map(\.name), ["updatepostsCollection"])
        XCTAssertEqual(authenticated.types["postsUpdateInput"]?.inputFields.map(\.name), ["title"])
        XCTAssertEqual(authenticated.types["posts"]?.field("authors")?.type.description, "authors", "a row policy can hide the author")
    }

    func testQueriesLowerToOneStatementWithEveryValueBound() throws {
        let schema = RoleSchemaBuilder(model: BlogModel.model, access: .service, naming: GraphQLNaming(inflect: false)).build()
        let document = try GraphQLParser.parse(#"""
            query($title: String) {
              postsCollection(first: 2, filter: {title: {startsWith: $title}, status: {eq: published}}, orderBy: [{title: DescNullsFirst}]) {
                edges { cursor node { id title authors { name } commentsCollection(first: 5) { totalCount edges { node { body } } } } }
              }
            }
            """#)
        let inputs = InputCoercion(schema: schema, variables: ["title": "Robert'); DROP TABLE posts;--"], declared: Dictionary(uniqueKeysWithValues: document.operations[0].variables.map { ($0.name, $0) }))
        var compiler = OperationCompiler(schema: schema, options: GraphQLOptions(), collector: FieldCollector(document: document, inputs: inputs))
        let plan = try compiler.compile(document.operations[0])
        guard case .collection(_, let entity, let query, let shape, let count) = plan.roots[0] else { return XCTFail("expected a collection") }
        XCTAssertNil(count)
        XCTAssertEqual(shape.pageSize, 2)
        let read = try RestPlanner(model: BlogModel.model).read(entity, query)
        XCTAssertEqual(read.limit, 3, "one row more tells whether there is a next page")
        let statement = SQLRenderer().read(read, count: false)
        XCTAssertFalse(statement.sql.contains("DROP TABLE"))
        XCTAssertFalse(statement.sql.contains("published"))
        XCTAssertTrue(statement.sql.contains("ORDER BY \"t0\".\"title\" DESC NULLS FIRST, \"t0\".\"id\" NULLS LAST"), statement.sql)
        // One statement: the page and its three sub-selects (author, comments, their count), each
        // a SELECT over a SELECT.
        XCTAssertEqual(statement.sql.components(separatedBy: "SELECT").count - 1, 8, statement.sql)
        XCTAssertFalse(statement.sql.contains(";"))
    }

    /// A query's plan is compiled once per shape: compared values from variables are filled in
    /// per request; variables that shape the plan (a page size, a prefix the compiler escapes)
    /// key it or keep it compiled per request. The database sees the same statement text.
    func testPlansAreCachedPerShapeWithTheRequestsValuesFilledIn() throws {
        let schema = RoleSchemaBuilder(model: BlogModel.model, access: .service, naming: GraphQLNaming(inflect: false)).build()
        let text = #"""
            query($id: Int!, $title: String, $n: Int, $prefix: String) {
              postsByPk(id: $id) { id title authors { name } }
              postsCollection(first: $n, filter: {or: [{title: {eq: $title}}, {title: {startsWith: $prefix}}]}) { edges { node { id } } }
            }
            """#
        let document = try GraphQLParser.parse(text)
        let operation = document.operations[0]
        XCTAssertEqual(schema.plans.bindableVariables(document: text, operation: operation, in: document), ["id", "title"])
        let planner = RestPlanner(model: BlogModel.model)
        func compiled(_ variables: JSONObject) throws -> (plan: OperationPlan, statement: SQLStatement) {
            let coerced = try InputCoercion.variables(operation.variables, given: variables, schema: schema)
            let plan = try GraphQLExecutor.cachedPlan(schema: schema, options: GraphQLOptions(), document, text: text, operation: operation, variables: coerced)
            var reads: [(plan: ReadPlan, count: Bool)] = []
            for root in plan.roots {
                switch root {
                case .collection(_, let entity, let query, _, _), .single(_, let entity, let query, _): reads.append((try planner.read(entity, query), false))
                default: XCTFail("unexpected root \(root)")
                }
            }
            return (plan, SQLRenderer().readAll(reads))
        }
        /// The compared values of the plan's reads, as they will be bound.
        func values(_ plan: OperationPlan) -> [String] {
            func of(_ condition: Condition) -> [String] {
                switch condition {
                case .filter(let filter):
                    if case .scalar(let value) = filter.value { return [value] }
                    return []
                case .and(let inner, _), .or(let inner, _): return inner.flatMap(of)
                }
            }
            return plan.roots.flatMap { root -> [String] in
                switch root {
                case .collection(_, _, let query, _, _), .single(_, _, let query, _): query.conditions.values.flatMap { $0.flatMap(of) }
                default: []
                }
            }
        }
        func pageSize(_ plan: OperationPlan) -> Int? {
            for root in plan.roots { if case .collection(_, _, _, let shape, _) = root { return shape.pageSize } }
            return nil
        }
        let first = try compiled(["id": 7, "title": "Robert'); DROP TABLE posts;--", "n": 2, "prefix": "a_b"])
        XCTAssertEqual(schema.plans.templates, 1)
        let second = try compiled(["id": 8, "title": "Second", "n": 2, "prefix": "a_b"])
        XCTAssertEqual(schema.plans.templates, 1, "the same shape: the kept plan")
        XCTAssertEqual(first.statement.sql, second.statement.sql)
        XCTAssertEqual(Set(values(first.plan)), ["7", "Robert'); DROP TABLE posts;--", #"a\_b%"#])
        XCTAssertEqual(Set(values(second.plan)), ["8", "Second", #"a\_b%"#], "the escaped prefix, and no placeholder left")
        // The page size and the prefix shape the plan: other values are other entries.
        let wider = try compiled(["id": 8, "title": "Second", "n": 5, "prefix": "c"])
        XCTAssertEqual(schema.plans.templates, 2)
        XCTAssertEqual(pageSize(second.plan), 2)
        XCTAssertEqual(pageSize(wider.plan), 5)
        XCTAssertEqual(Set(values(wider.plan)), ["8", "Second", "c%"])
        // A literal that looks like a placeholder keeps its shape compiled per request, and
        // each request still gets its own value beside the literal.
        let lookalike = "query($a: Int!, $b: Int!) { postsCollection(filter: {id: {gt: -1987654001}, author_id: {eq: $a}, or: [{id: {eq: $b}}]}) { edges { node { id } } } }"
        let lookalikeDocument = try GraphQLParser.parse(lookalike)
        for (a, b) in [(1, 2), (3, 4)] {
            let coerced = try InputCoercion.variables(lookalikeDocument.operations[0].variables, given: ["a": .integer(Int64(a)), "b": .integer(Int64(b))], schema: schema)
            let plan = try GraphQLExecutor.cachedPlan(
                schema: schema, options: GraphQLOptions(), lookalikeDocument, text: lookalike, operation: lookalikeDocument.operations[0], variables: coerced)
            XCTAssertEqual(Set(values(plan)), ["-1987654001", String(a), String(b)])
        }
        XCTAssertEqual(schema.plans.templates, 2, "the look-alike is not kept")
        // So does a cursor whose decoded value looks like one (the document's text cannot show it).
        let cursor = Data("[-1987654000]".utf8).base64EncodedString()
        let paged = "query($a: Int!) { postsCollection(after: \"\(cursor)\", filter: {author_id: {eq: $a}}) { edges { node { id } } } }"
        let pagedDocument = try GraphQLParser.parse(paged)
        for a in [1, 5] {
            let coerced = try InputCoercion.variables(pagedDocument.operations[0].variables, given: ["a": .integer(Int64(a))], schema: schema)
            let plan = try GraphQLExecutor.cachedPlan(
                schema: schema, options: GraphQLOptions(), pagedDocument, text: paged, operation: pagedDocument.operations[0], variables: coerced)
            XCTAssertTrue(values(plan).contains("-1987654000"), "\(values(plan))")
            XCTAssertTrue(values(plan).contains(String(a)), "\(values(plan))")
        }
        XCTAssertEqual(schema.plans.templates, 2, "the cursor's look-alike is not kept")
        // A value the compiler transforms is never a placeholder: a nodeId is decoded.
        let node = "query($n: ID!) { postsCollection(filter: {nodeId: {eq: $n}}) { edges { node { id } } } }"
        let nodeDocument = try GraphQLParser.parse(node)
        XCTAssertEqual(schema.plans.bindableVariables(document: node, operation: nodeDocument.operations[0], in: nodeDocument), [])
    }

    func testDepthAndCostAreBounded() throws {
        let schema = RoleSchemaBuilder(model: BlogModel.model, access: .service, naming: GraphQLNaming(inflect: false)).build()
        func compile(_ text: String, _ options: GraphQLOptions) throws -> OperationPlan {
            let document = try GraphQLParser.parse(text)
            var compiler = OperationCompiler(
                schema: schema, options: options, collector: FieldCollector(document: document, inputs: InputCoercion(schema: schema, variables: [:], declared: [:])))
            return try compiler.compile(document.operations[0])
        }
        let nested = "{ authorsCollection(first: 30) { edges { node { postsCollection(first: 30) { edges { node { commentsCollection(first: 30) { totalCount } } } } } } } }"
        XCTAssertNoThrow(try compile(nested, GraphQLOptions(maxCost: 30 + 900 + 27_000)))
        XCTAssertThrowsError(try compile(nested, GraphQLOptions(maxCost: 27_000))) { XCTAssertEqual(($0 as? GraphQLError)?.code, "MB725") }
        XCTAssertThrowsError(try compile(nested, GraphQLOptions(maxDepth: 6))) { XCTAssertEqual(($0 as? GraphQLError)?.code, "MB724") }
        XCTAssertThrowsError(try compile("{ postsCollection(first: 1, last: 1) { totalCount } }", GraphQLOptions())) { XCTAssertEqual(($0 as? GraphQLError)?.code, "MB721") }
        XCTAssertThrowsError(try compile("{ postsCollection { edges { node { id { x } } } } }", GraphQLOptions())) { XCTAssertEqual(($0 as? GraphQLError)?.code, "MB721") }
        XCTAssertThrowsError(try compile("{ postsCollection(bogus: 1) { totalCount } }", GraphQLOptions())) { XCTAssertEqual(($0 as? GraphQLError)?.code, "MB721") }
    }

    func testSeveralRootFieldsAndACountAreOneStatement() throws {
        let schema = RoleSchemaBuilder(model: BlogModel.model, access: .service, naming: GraphQLNaming(inflect: false)).build()
        let document = try GraphQLParser.parse(#"{ a: postsCollection(first: 1) { totalCount edges { node { id } } } b: authorsByPk(id: 1) { name } }"#)
        var compiler = OperationCompiler(
            schema: schema, options: GraphQLOptions(), collector: FieldCollector(document: document, inputs: InputCoercion(schema: schema, variables: [:], declared: [:])))
        let plan = try compiler.compile(document.operations[0])
        let planner = RestPlanner(model: BlogModel.model)
        var reads: [(plan: ReadPlan, count: Bool)] = []
        for root in plan.roots {
            switch root {
            case .collection(_, let entity, let query, _, let count?):
                reads.append((try planner.read(entity, query), false))
                reads.append((try planner.read(entity, count), true))
            case .single(_, let entity, let query, _):
                reads.append((try planner.read(entity, query), false))
            default: XCTFail("unexpected root \(root)")
            }
        }
        let statement = SQLRenderer().readAll(reads)
        XCTAssertTrue(statement.sql.hasPrefix("SELECT json_build_array("), statement.sql)
        XCTAssertEqual(statement.sql.components(separatedBy: "count(*)").count - 1, 1, statement.sql)
        XCTAssertEqual(statement.sql.components(separatedBy: "json_agg").count - 1, 3, "a page, its count's (unused) rows, and the author")
        XCTAssertFalse(statement.sql.contains(";"))
    }
}
