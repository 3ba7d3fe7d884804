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
