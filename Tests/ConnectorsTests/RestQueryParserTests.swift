import XCTest
@testable import Connectors

final class RestQueryParserTests: XCTestCase {
    func parse(_ items: [(String, String)]) throws -> RestQuery {
        try RestQueryParser.parse(items)
    }

    func assertParseError(_ items: [(String, String)], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(items), file: file, line: line) { error in
            XCTAssertEqual((error as? RestError)?.code, "PGRST100", "\(error)", file: file, line: line)
            XCTAssertEqual((error as? RestError)?.status, 400, file: file, line: line)
        }
    }

    func testSelectWithAliasesCastsPathsAndEmbeds() throws {
        let query = try parse([("select", "id,label:title,price::text,details->>lang,writer:authors!books_author_id_fkey!inner(name,org(*)),*")])
        let select = try XCTUnwrap(query.select)
        XCTAssertEqual(select.count, 6)
        XCTAssertEqual(select[0], .column(Field(name: "id", path: []), alias: nil, cast: nil))
        XCTAssertEqual(select[1], .column(Field(name: "title", path: []), alias: "label", cast: nil))
        XCTAssertEqual(select[2], .column(Field(name: "price", path: []), alias: nil, cast: "text"))
        XCTAssertEqual(select[3], .column(Field(name: "details", path: [.text("lang")]), alias: nil, cast: nil))
        guard case .embed(let embed) = select[4] else { return XCTFail("embed expected") }
        XCTAssertEqual(embed.relation, "authors")
        XCTAssertEqual(embed.alias, "writer")
        XCTAssertEqual(embed.hint, "books_author_id_fkey")
        XCTAssertTrue(embed.inner)
        XCTAssertEqual(embed.select.count, 2)
        XCTAssertEqual(select[5], .star)
    }

    func testJSONPathsAreReadInBytes() throws {
        XCTAssertEqual(try RestQueryParser.parseField("meta->a->>b"), Field(name: "meta", path: [.json("a"), .text("b")]))
        // A combining mark after the arrow stays part of the key, not of the arrow.
        XCTAssertEqual(try RestQueryParser.parseField("meta->\u{301}x"), Field(name: "meta", path: [.json("\u{301}x")]))
        XCTAssertEqual(try RestQueryParser.parseField("é->k"), Field(name: "é", path: [.json("k")]))
        XCTAssertThrowsError(try RestQueryParser.parseField("meta->"))
        // So is the dot after an operator: a combining mark after it belongs to the value.
        let field = Field(name: "name", path: [])
        XCTAssertEqual(try RestQueryParser.parseFilter(field: field, "eq.\u{301}x").value, .scalar("\u{301}x"))
        XCTAssertEqual(try RestQueryParser.parseFilter(field: field, "not.eq.\u{301}").value, .scalar("\u{301}"))
        XCTAssertThrowsError(try RestQueryParser.parseFilter(field: field, "not\u{301}.eq.x"))
        XCTAssertEqual(RestQueryParser.split("id").0, [])
        XCTAssertEqual(RestQueryParser.split("books.authors.name").0, ["books", "authors"])
        XCTAssertEqual(RestQueryParser.split("meta->a.b").1, "meta->a.b")
    }

    func testFiltersWithNegationQuantifiersAndLists() throws {
        let query = try parse([
            ("genre", "not.eq.fiction"), ("id", "in.(1,\"2,3\",4)"), ("name", "like(any).{a*,*b}"),
            ("deleted", "is.null"), ("body", "fts(english).cat & dog"), ("books.pages", "gt.100"),
        ])
        let top = try XCTUnwrap(query.conditions[[]])
        XCTAssertEqual(top.count, 5)
        guard case .filter(let negated) = top[0], case .filter(let list) = top[1], case .filter(let any) = top[2],
            case .filter(let isNull) = top[3], case .filter(let fts) = top[4]
        else { return XCTFail() }
        XCTAssertTrue(negated.negated)
        XCTAssertEqual(negated.op, .eq)
        XCTAssertEqual(list.value, .list(["1", "2,3", "4"]))
        XCTAssertEqual(any.quantifier, .any)
        XCTAssertEqual(any.value, .list(["a*", "*b"]))
        XCTAssertEqual(isNull.value, .scalar("null"))
        XCTAssertEqual(fts.language, "english")
        XCTAssertEqual(fts.value, .scalar("cat & dog"))
        XCTAssertEqual(query.conditions[["books"]]?.count, 1)
    }

    func testLogicTreesNest() throws {
        let query = try parse([("or", "(a.eq.1,and(b.gt.2,c.not.is.null),not.or(d.eq.x,e.eq.y))"), ("books.not.and", "(f.eq.1,g.eq.2)")])
        guard case .or(let children, let negated)? = query.conditions[[]]?.first else { return XCTFail() }
        XCTAssertFalse(negated)
        XCTAssertEqual(children.count, 3)
        guard case .and(let inner, false) = children[1], case .or(_, true) = children[2] else { return XCTFail() }
        XCTAssertEqual(inner.count, 2)
        guard case .and(_, true)? = query.conditions[["books"]]?.first else { return XCTFail("embedded not.and") }
    }

    func testParenthesesInsideQuotedValuesAreText() throws {
        // PostgREST reads `"a(b"` as one value: a parenthesis inside quotes must not open a group.
        let query = try parse([("or", #"(name.eq."a(b",name.eq."c)d",name.in.("x(","y"))"#)])
        guard case .or(let children, false)? = query.conditions[[]]?.first else { return XCTFail("\(query.conditions)") }
        XCTAssertEqual(children.count, 3)
    }

    func testOrderLimitOffsetAndLists() throws {
        let query = try parse([("order", "price.desc.nullslast,id"), ("limit", "5"), ("books.limit", "2"), ("offset", "10"), ("on_conflict", "a,b"), ("columns", "x,y")])
        XCTAssertEqual(query.order[[]], [
            OrderTerm(field: Field(name: "price", path: []), descending: true, nulls: .last),
            OrderTerm(field: Field(name: "id", path: []), descending: false, nulls: nil),
        ])
        XCTAssertEqual(query.limit[[]], 5)
        XCTAssertEqual(query.limit[["books"]], 2)
        XCTAssertEqual(query.offset[[]], 10)
        XCTAssertEqual(query.onConflict, ["a", "b"])
        XCTAssertEqual(query.columns, ["x", "y"])
    }

    func testHostileInputGetsACleanError() {
        assertParseError([("id", "eq")])
        assertParseError([("id", "nope.1")])
        assertParseError([("id", "in.1,2")])
        assertParseError([("id", "is.maybe")])
        assertParseError([("id", "eq(some).1")])
        assertParseError([("limit", "-1")])
        assertParseError([("limit", "lots")])
        assertParseError([("order", "id.sideways")])
        assertParseError([("or", "(a.eq.1")])
        assertParseError([("or", "a.eq.1)")])
        assertParseError([("or", "((((")])
        assertParseError([("select", "id,(")])
        assertParseError([("select", "books(id")])
        assertParseError([("select", "id::text;drop")])
        assertParseError([("select", "a,,b")])
        assertParseError([("id", "eq.\u{0}")])
        assertParseError([("name", "in.(\"unterminated)")])
        // 10,000-deep nesting: refused, not a stack overflow.
        let deep = String(repeating: "and(", count: 10_000) + "a.eq.1" + String(repeating: ")", count: 10_000)
        assertParseError([("or", "(" + deep + ")")])
        let deepSelect = String(repeating: "a(", count: 10_000) + "id" + String(repeating: ")", count: 10_000)
        assertParseError([("select", deepSelect)])
        let parens = String(repeating: "(", count: 10_000)
        assertParseError([("or", parens)])
    }

    func testHugeInListsParse() throws {
        let values = (0..<50_000).map(String.init).joined(separator: ",")
        let query = try parse([("id", "in.(\(values))")])
        guard case .filter(let filter)? = query.conditions[[]]?.first, case .list(let list) = filter.value else { return XCTFail() }
        XCTAssertEqual(list.count, 50_000)
    }

    func testRPCArgumentsAreNotFilters() throws {
        let query = try RestQueryParser.parse([("g", "poetry"), ("id", "gt.3")], argumentNames: ["g"])
        XCTAssertEqual(query.arguments.map(\.0), ["g"])
        XCTAssertEqual(query.conditions[[]]?.count, 1)
    }
}

extension RestQueryParserTests {
    func testCastsAreAsciiTypeNamesOnly() {
        assertParseError([("select", "id::\u{0D4E})")])
        assertParseError([("select", "id::text\u{0301}")])
        XCTAssertNoThrow(try parse([("select", "id::character varying,x::int[]")]))
    }

    func testQuotingDoublesEveryQuoteScalar() {
        XCTAssertEqual(quote("a\"\u{0301}b"), "\"a\"\"\u{0301}b\"")
        XCTAssertEqual(quote("plain"), "\"plain\"")
    }

    /// Parsed selects are kept by their text: the same text gives the same items from the cache,
    /// a bad one is refused every time (errors are not kept), long texts and a full cache are
    /// handled by parsing anew.
    func testParsedSelectsAreKeptButErrorsAndLongTextsAreNot() throws {
        let cache = ParsedSelectCache(capacity: 2, maxKeyBytes: 40)
        var parses = 0
        let parseCounted: (String) throws(RestError) -> [SelectItem] = { text throws(RestError) in
            parses += 1
            return try RestQueryParser.parseSelect(text, depth: 0)
        }
        let first = try cache.items(for: "id,parents(id,groups(name))", parse: parseCounted)
        let again = try cache.items(for: "id,parents(id,groups(name))", parse: parseCounted)
        XCTAssertEqual(first, again)
        XCTAssertEqual(parses, 1, "the second answer came from the cache")
        for _ in 0..<2 {
            XCTAssertThrowsError(try cache.items(for: "id,parents(id", parse: parseCounted)) { XCTAssertEqual(($0 as? RestError)?.code, "PGRST100") }
        }
        XCTAssertEqual(parses, 3, "a refused select is parsed (and refused) each time")
        let long = "id," + String(repeating: "x", count: 40)
        _ = try cache.items(for: long, parse: parseCounted)
        _ = try cache.items(for: long, parse: parseCounted)
        XCTAssertEqual(parses, 5, "texts over the limit are not kept")
        // Equal as Swift strings, different bytes: a column named `a-≯b`, then a JSON path.
        let composed = try cache.items(for: "a-\u{226F}b", parse: parseCounted)
        let decomposed = try? cache.items(for: "a->\u{338}b", parse: parseCounted)
        XCTAssertEqual(parses, 7, "non-ASCII texts are parsed each time")
        XCTAssertEqual(composed, [.column(Field(name: "a-\u{226F}b", path: []), alias: nil, cast: nil)])
        XCTAssertNotEqual(composed, decomposed)
        _ = try cache.items(for: "a", parse: parseCounted)
        XCTAssertEqual(cache.count, 2)
        _ = try cache.items(for: "b", parse: parseCounted)
        XCTAssertEqual(cache.count, 1, "a full cache starts over")
        // Through the parser: the cached path answers as the parse does, casts included.
        let query = try parse([("select", "id,price::text,parents(id)")])
        let cached = try parse([("select", "id,price::text,parents(id)")])
        XCTAssertEqual(query.select, cached.select)
        XCTAssertEqual(query.select?[1], .column(Field(name: "price", path: []), alias: nil, cast: "text"))
    }
}
