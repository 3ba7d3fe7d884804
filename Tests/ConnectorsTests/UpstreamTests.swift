import Foundation
import Runtime
import XCTest
@testable import Connectors

/// The pieces of the upstream proxy that decide before anything is sent: route matching, request
/// validation against the spec, the circuit breaker and the cache's reading of Cache-Control.
final class UpstreamTests: XCTestCase {
    static let spec = ##"""
        {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
         "paths": {
           "/users/{id}": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                           "get": {"operationId": "getUser", "responses": {"200": {"description": "ok"}}},
                           "patch": {"operationId": "patchUser", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserPatch"}}}},
                                     "responses": {"200": {"description": "ok"}}}},
           "/users/me": {"get": {"operationId": "me", "responses": {"200": {"description": "ok"}}}},
           "/search": {"get": {"operationId": "search", "parameters": [{"name": "q", "in": "query", "required": true, "schema": {"type": "string", "minLength": 2}},
                                                                  {"name": "sort", "in": "query", "schema": {"enum": ["asc", "desc"]}}],
                               "responses": {"200": {"description": "ok"}}}}},
         "components": {"schemas": {"UserPatch": {"type": "object", "additionalProperties": false, "required": ["name"],
             "properties": {"name": {"type": "string", "maxLength": 5}, "age": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
                            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}}}}}
        """##

    func testRoutesMatchLiteralsBeforeParameters() throws {
        let spec = try UpstreamSpec.parse(Self.spec)
        XCTAssertEqual(spec.match(method: "GET", path: ["users", "me"])?.route.operationID, "me")
        let user = try XCTUnwrap(spec.match(method: "GET", path: ["users", "42"]))
        XCTAssertEqual(user.route.operationID, "getUser")
        XCTAssertEqual(user.parameters, ["id": "42"])
        XCTAssertNil(spec.match(method: "DELETE", path: ["users", "42"]))
        XCTAssertEqual(Set(spec.allowedMethods(path: ["users", "42"])), ["GET", "PATCH"])
        XCTAssertEqual(spec.allowedMethods(path: ["nothing"]), [])
        XCTAssertEqual(spec.operations.map(\.name), ["getUser", "me", "patchUser", "search"])
        XCTAssertThrowsError(try UpstreamSpec.parse(#"{"openapi": "2.5", "paths": {}}"#))
        XCTAssertThrowsError(try UpstreamSpec.parse(#"{"openapi": "3.0.0", "paths": {"users": {}}}"#))
    }

    func testBodiesAreValidatedAgainstTheSpec() throws {
        let spec = try UpstreamSpec.parse(Self.spec)
        let schema = try XCTUnwrap(spec.match(method: "PATCH", path: ["users", "1"])?.route.body)
        let validator = SchemaValidator(document: spec.document)
        let cases: [(JSONValue, String?)] = [
            (["name": "Ann"], nil),
            (["name": "Ann", "age": .null, "tags": ["a"]], nil),
            (["name": "Ann", "age": 3], nil),
            (["age": 3], "/name"),
            (["name": 5], "/name"),
            (["name": "Annabel"], "/name"),
            (["name": "Ann", "age": -1], "/age"),
            (["name": "Ann", "age": 1.5], "/age"),
            (["name": "Ann", "role": "admin"], "/role"),
            (["name": "Ann", "tags": ["a", "b", "c"]], "/tags"),
            (["name": "Ann", "tags": [1]], "/tags/0"),
            ([1, 2], ""),
        ]
        for (value, pointer) in cases {
            do {
                try validator.validate(value, against: schema)
                XCTAssertNil(pointer, "\(value.jsonString) should be refused at \(pointer ?? "")")
            } catch {
                XCTAssertEqual(error.pointer, pointer ?? "accepted", "\(value.jsonString): \(error)")
            }
        }
        XCTAssertEqual(SchemaValidator.coerce("12", schema: ["type": "integer"]), 12)
        XCTAssertEqual(SchemaValidator.coerce("x", schema: ["type": "integer"]), "x")
        XCTAssertEqual(SchemaValidator.coerce("true", schema: ["type": "boolean"]), true)
    }

    func testTheBreakerOpensAndLetsOneTrialThrough() async throws {
        let breaker = CircuitBreaker(threshold: 3, cooldown: .milliseconds(100))
        for _ in 0..<3 {
            XCTAssertTrue(breaker.admit())
            breaker.record(success: false)
        }
        XCTAssertEqual(breaker.state, .open)
        XCTAssertFalse(breaker.admit())
        try await Task.sleep(for: .milliseconds(150))
        XCTAssertTrue(breaker.admit(), "one trial after the cooldown")
        XCTAssertFalse(breaker.admit(), "and only one")
        breaker.record(success: true)
        XCTAssertEqual(breaker.state, .closed)
        XCTAssertTrue(breaker.admit())
    }

    func testCacheControlIsHonoured() {
        XCTAssertEqual(ResponseCache.maxAge("public, max-age=60"), 60)
        XCTAssertEqual(ResponseCache.maxAge("s-maxage=30"), 30)
        XCTAssertNil(ResponseCache.maxAge("max-age=60, private"))
        XCTAssertNil(ResponseCache.maxAge("no-store"))
        XCTAssertNil(ResponseCache.maxAge("max-age=0"))
        XCTAssertNil(ResponseCache.maxAge(nil))
        XCTAssertEqual(ResponseCache.maxAge("max-age=99999999"), 86_400)
        let cache = ResponseCache(maxEntries: 2)
        for key in ["a", "b", "c"] {
            cache.put(key, ResponseCache.Entry(status: 200, contentType: nil, body: .init(string: key), storedAt: .now, maxAge: 60))
        }
        XCTAssertNil(cache.get("a"), "the least recently used goes first")
        XCTAssertNotNil(cache.get("c"))
    }
}

/// What a GraphQL request asks of an upstream, measured before it is forwarded.
final class GraphQLQueryAnalyzerTests: XCTestCase {
    func testRootsDepthAndCost() throws {
        let simple = try GraphQLQueryAnalyzer.analyze("{ books { title author { name } } }", operationName: nil)
        XCTAssertEqual(simple.rootFields, ["books"])
        XCTAssertEqual(simple.operation, "query")
        XCTAssertEqual(simple.depth, 3)
        let aliased = try GraphQLQueryAnalyzer.analyze(
            #"""
            query Q($n: Int = 3) @cached { first: books(first: 5, filter: {title: "a, b } c"}) { ...F } me { id } }
            fragment F on Book { title(format: """block { string""") }
            mutation M { addBook(title: "x") { id } }
            """#, operationName: "Q")
        XCTAssertEqual(aliased.rootFields, ["books", "me"])
        XCTAssertEqual(aliased.cost, 1 + 5 * 1 + 2, "a list's children count once per item asked for")
        let mutation = try GraphQLQueryAnalyzer.analyze("mutation M { addBook(title: \"x\") { id } } query Q { books { id } }", operationName: "M")
        XCTAssertEqual(mutation.operation, "mutation")
        XCTAssertEqual(mutation.rootFields, ["addBook"])
    }

    func testRefusals() {
        var limits = GraphQLQueryAnalyzer.Limits()
        limits.maxDepth = 4
        limits.maxCost = 50
        let cases: [(String, String?, String)] = [
            ("{ a { b { c { d { e } } } } }", nil, "deep"),
            ("{ a(first: 100) { b c } }", nil, "costs"),
            ("{ a { b }", nil, "expected"),
            ("{ a { ...X } } fragment X on A { b { ...X } }", nil, "spreads itself"),
            ("{ a { ...Nope } }", nil, "unknown fragment"),
            ("query A { a } query B { b }", nil, "operationName"),
            ("query A { a }", "B", "no operation named B"),
            ("{ a(x: \"unterminated) }", nil, "unterminated"),
            ("{ a } ☃", nil, "unexpected"),
            (String(repeating: "{ a ", count: 100) + String(repeating: "}", count: 100), nil, "deeper than 64"),
        ]
        for (query, name, expected) in cases {
            XCTAssertThrowsError(try GraphQLQueryAnalyzer.analyze(query, operationName: name, limits: limits), query) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
        XCTAssertThrowsError(try GraphQLQueryAnalyzer.analyze(String(repeating: "{", count: 70_000), operationName: nil))
    }
}

/// A Supabase project's `/rest/v1/` description (PostgREST's Swagger 2.0) read into the model.
final class RestProxyModelTests: XCTestCase {
    func testPostgRESTSwaggerNotesGiveKeysAndRelations() throws {
        let swagger: JSONValue = [
            "swagger": "2.0",
            "definitions": [
                "authors": ["type": "object", "required": ["id", "name"], "properties": [
                    "id": ["type": "integer", "format": "bigint", "description": "Note:\nThis is a Primary Key.<pk/>"],
                    "name": ["type": "string", "format": "text"],
                    "mood": ["type": "string", "format": "public.mood", "enum": ["happy", "sad"]],
                ]],
                "posts": ["type": "object", "required": ["id"], "properties": [
                    "id": ["type": "integer", "format": "integer", "description": "Note:\nThis is a Primary Key.<pk/>"],
                    "author_id": ["type": "integer", "format": "bigint", "description": "Note:\nThis is a Foreign Key to `authors.id`.<fk table='authors' column='id'/>"],
                    "tags": ["type": "array", "items": ["type": "string"], "format": "text[]"],
                    "published_at": ["type": "string", "format": "timestamp with time zone"],
                ]],
            ],
        ]
        let model = RestProxySource.model(from: swagger)
        XCTAssertEqual(model.entities.map(\.name), ["authors", "posts"])
        XCTAssertEqual(model.entity(named: "authors")?.primaryKey, ["id"])
        XCTAssertEqual(model.entity(named: "authors")?.column(named: "id")?.nativeType, "bigint")
        XCTAssertEqual(model.entity(named: "authors")?.column(named: "name")?.nullable, false)
        XCTAssertEqual(model.entity(named: "posts")?.column(named: "tags")?.nativeType, "text[]")
        XCTAssertEqual(model.entity(named: "posts")?.column(named: "published_at")?.type, .datetime)
        let kinds = Set(model.relations.map { "\($0.from.name)->\($0.to.name):\($0.kind.rawValue)" })
        XCTAssertEqual(kinds, ["posts->authors:manyToOne", "authors->posts:oneToMany"])
    }
}

/// OpenAPI and JSON Schema documents written in YAML.
final class YAMLDocumentTests: XCTestCase {
    func testAYAMLSpecReadsLikeItsJSON() throws {
        let yaml = """
            openapi: 3.0.3
            info: {title: Pets, version: "1"}
            paths:
              /pets/{id}:
                parameters:
                  - {name: id, in: path, required: true, schema: {type: integer}}
                get:
                  operationId: getPet
                  responses:
                    "200":
                      description: ok
                      content:
                        application/json:
                          schema: {$ref: "#/components/schemas/Pet"}
            components:
              schemas:
                Base: &base
                  type: object
                  properties:
                    id: {type: integer, format: int64}
                Pet:
                  allOf:
                    - *base
                    - type: object
                      required: [name]
                      properties:
                        name: {type: string, maxLength: 30}
                        vaccinated: {type: boolean, default: false}
                        weight: {type: number, nullable: true}
            """
        let spec = try UpstreamSpec.parse(yaml)
        XCTAssertEqual(spec.match(method: "GET", path: ["pets", "7"])?.route.operationID, "getPet")
        let model = try UploadedSchema.parse(yaml, format: .openapi).model
        let pet = try XCTUnwrap(model.entity(named: "Pet"))
        XCTAssertEqual(pet.column(named: "id")?.nativeType, "bigint", "the anchor's properties arrive through allOf")
        XCTAssertEqual(pet.column(named: "name")?.nativeType, "character varying(30)")
        XCTAssertEqual(pet.column(named: "vaccinated")?.defaultExpression, "false")
        XCTAssertEqual(pet.column(named: "weight")?.nullable, true)
    }

    func testExpandingAnchorsAreRefused() {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1..<9 {
            lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        let laughs = "openapi: 3.0.0\npaths: {}\n" + lines.joined(separator: "\n")
        XCTAssertThrowsError(try UpstreamSpec.parse(laughs)) { error in
            XCTAssertTrue("\(error)".contains("expands"), "\(error)")
        }
        XCTAssertThrowsError(try UploadedSchema.parse("key: [unclosed", format: .openapi)) { error in
            XCTAssertTrue("\(error)".contains("YAML"), "\(error)")
        }
    }
}
