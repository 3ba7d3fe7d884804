import XCTest

@testable import GraphQL

final class GraphQLParserTests: XCTestCase {
    func testParsesOperationsFragmentsVariablesAndValues() throws {
        let document = try GraphQLParser.parse(#"""
            # a comment
            query Posts($first: Int = 3, $filter: postsFilter!, $ids: [BigInt!]) @skip(if: false) {
              postsCollection(first: $first, filter: {and: [$filter, {title: {eq: "a \"quoted\" \u00e9 \uD83D\uDE00"}}]}, orderBy: [{id: DescNullsLast}]) {
                ...Page
                edges { n: node { id ... on posts { title } } }
              }
            }
            fragment Page on postsConnection { totalCount pageInfo { hasNextPage } }
            mutation { deleteFrompostsCollection(atMost: -1, filter: {score: {gt: 1.5e3}}) { affectedCount } }
            """#)
        XCTAssertEqual(document.operations.count, 2)
        let query = document.operations[0]
        XCTAssertEqual(query.kind, .query)
        XCTAssertEqual(query.name, "Posts")
        XCTAssertEqual(query.variables.map(\.name), ["first", "filter", "ids"])
        XCTAssertEqual(query.variables[1].type, .nonNull(.named("postsFilter")))
        XCTAssertEqual(query.variables[2].type, .list(.nonNull(.named("BigInt"))))
        XCTAssertEqual(query.variables[0].defaultValue, .int("3"))
        guard case .field(let field) = query.selections[0] else { return XCTFail("expected a field") }
        XCTAssertEqual(field.location, SourceLocation(line: 3, column: 3))
        guard case .object(let filter) = field.arguments[1].value, case .list(let parts) = filter[0].value,
            case .object(let second) = parts[1], case .object(let title) = second[0].value
        else { return XCTFail("expected a nested filter") }
        XCTAssertEqual(parts[0], .variable("filter"))
        XCTAssertEqual(title[0].value, .string("a \"quoted\" é 😀"))
        XCTAssertEqual(document.fragments["Page"]?.typeCondition, "postsConnection")
        guard case .field(let delete) = document.operations[1].selections[0] else { return XCTFail("expected a field") }
        XCTAssertEqual(delete.arguments[0].value, .int("-1"))
        guard case .object(let score) = delete.arguments[1].value, case .object(let gt) = score[0].value else { return XCTFail("expected a filter") }
        XCTAssertEqual(gt[0].value, .float("1.5e3"))
    }

    func testBlockStringsAreDedented() throws {
        let document = try GraphQLParser.parse("{ f(a: \"\"\"\n    one\n      two\n    \"\"\") }")
        guard case .field(let field) = document.operations[0].selections[0] else { return XCTFail("expected a field") }
        XCTAssertEqual(field.arguments[0].value, .string("one\n  two"))
    }

    func testSyntaxErrorsSayWhere() {
        let cases: [(String, Int, Int)] = [
            ("{ a", 1, 4),
            ("{\n  a(b: )\n}", 2, 8),
            ("query { a: }", 1, 12),
            ("{ a(b: \"unterminated) }", 1, 8),
            ("{ a(b: 01) }", 1, 8),
            ("{ a(b: \"\\q\") }", 1, 8),
            ("{ a } }", 1, 7),
            ("", 1, 1),
            ("{ a(b: 1.) }", 1, 8),
            ("{ a(b: $) }", 1, 9),
        ]
        for (text, line, column) in cases {
            XCTAssertThrowsError(try GraphQLParser.parse(text), text) { error in
                guard let error = error as? GraphQLError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.code, "MB720", text)
                XCTAssertEqual(error.locations, [SourceLocation(line: line, column: column)], text)
            }
        }
    }

    func testHostileDocumentsAreRefusedWithoutCrashing() {
        let hostile = [
            String(repeating: "{", count: 10_000) + String(repeating: "}", count: 10_000),
            "{ a(b: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + ") }",
            "{ a(b: " + String(repeating: "{c: ", count: 5_000) + "1" + String(repeating: "}", count: 5_000) + ") }",
            "query($a: " + String(repeating: "[", count: 5_000) + "Int" + String(repeating: "]", count: 5_000) + ") { a }",
            "{ a(b: \"\u{0}\") }",
            "{ a\u{0} }",
            "{ a(b: \"\\uD800\") }",
            String(repeating: "a ", count: 200_000),
        ]
        for text in hostile {
            XCTAssertThrowsError(try GraphQLParser.parse(text)) { error in
                let code = (error as? GraphQLError)?.code
                XCTAssertTrue(["MB720", "MB724", "MB725"].contains(code ?? ""), "\(code ?? "?") for \(text.prefix(20))")
            }
        }
        // A megabyte string is just a string.
        let big = String(repeating: "x", count: 1 << 20)
        XCTAssertNoThrow(try GraphQLParser.parse("{ a(b: \"\(big)\") }"))
    }

    func testFragmentCyclesAreFound() throws {
        let document = try GraphQLParser.parse("{ ...A } fragment A on Query { ...B } fragment B on Query { x { ...A } }")
        XCTAssertThrowsError(try FieldCollector.checkFragmentCycles(document)) { error in
            XCTAssertEqual((error as? GraphQLError)?.code, "MB721")
            XCTAssertTrue((error as? GraphQLError)?.message.contains("within itself") ?? false)
        }
        let fine = try GraphQLParser.parse("{ ...A ...B } fragment A on Query { ...B } fragment B on Query { x }")
        XCTAssertNoThrow(try FieldCollector.checkFragmentCycles(fine))
    }
}
