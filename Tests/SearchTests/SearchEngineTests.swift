import Runtime
import XCTest

@testable import Search

final class SearchEngineTests: XCTestCase {
    func products() -> SearchIndex {
        let index = SearchIndex(
            uid: "products", source: "main", entity: "products", primaryKey: "id", settings: settings(), createdAt: Date(), updatedAt: Date())
        index.upsert([
            ["id": 1, "name": "Laptop Pro 14", "brand": "Apple", "price": 1999, "tags": ["computer", "portable"], "secret": "a"],
            ["id": 2, "name": "Gaming laptop", "brand": "Asus", "price": 1299, "tags": ["computer"], "secret": "b"],
            ["id": 3, "name": "Desk lamp", "brand": "Ikea", "price": 25, "tags": ["home"], "secret": "c"],
            ["id": 4, "name": "Crème brûlée torch", "brand": "Bonjour", "price": 30, "tags": ["kitchen"], "secret": "d"],
            ["id": 5, "name": "Lapis lazuli necklace", "brand": "Tiffany", "price": 450, "tags": [], "secret": nil],
        ])
        return index
    }

    func settings() -> IndexSettings {
        var settings = IndexSettings()
        try! settings.apply(["filterableAttributes": ["brand", "price", "tags", "secret"], "sortableAttributes": ["price", "name"]])
        return settings
    }

    func search(_ index: SearchIndex, _ body: JSONObject, view: SearchView = .everything) async throws -> JSONObject {
        try await index.search(try SearchQuery(json: body), view: view)
    }

    func found(_ index: SearchIndex, _ body: JSONObject, view: SearchView = .everything) async throws -> [Int64] {
        ids(try await search(index, body, view: view))
    }

    func first(_ response: JSONObject) -> JSONValue? { response["hits"]?.arrayValue?.first }

    func ids(_ response: JSONObject) -> [Int64] { response["hits"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? [] }

    func testTyposFollowWordLengthAndTranspositionsCountOne() async throws {
        let index = products()
        // "laptpo": a transposition in a 6-letter word (one typo allowed) — the prefix rule makes it a prefix too.
        let swapped = try await search(index, ["q": "laptpo "])
        XCTAssertEqual(Set(ids(swapped)), [1, 2])
        // Four letters allow no typo: "lemp" does not find "lamp".
        let r1 = try await found(index, ["q": "lemp "])
        XCTAssertEqual(r1, [])
        // A first-letter typo counts two: "maptop" (6 letters, one allowed) finds nothing.
        let r2 = try await found(index, ["q": "maptop "])
        XCTAssertEqual(r2, [])
        // Accents fold: "creme brulee".
        let r3 = try await found(index, ["q": "creme brulee"])
        XCTAssertEqual(r3, [4])
    }

    func testTheLastWordIsAPrefixAndExactMatchesRankFirst() async throws {
        let index = products()
        let typed = try await search(index, ["q": "lap"])
        XCTAssertEqual(Set(ids(typed)), [1, 2, 5])
        let exact = try await search(index, ["q": "laptop"])
        XCTAssertEqual(ids(exact).prefix(2).sorted(), [1, 2])
        XCTAssertFalse(ids(exact).contains(5), "laptop is not lapis")
    }

    func testFiltersSortFacetsAndExactTotals() async throws {
        let index = products()
        let filtered = try await search(index, ["filter": "price 20 TO 500 AND NOT brand = ikea", "sort": ["price:desc"]])
        XCTAssertEqual(ids(filtered), [5, 4])
        XCTAssertEqual(filtered["estimatedTotalHits"], 2)
        let listed = try await search(index, ["filter": [["brand = Apple", "brand = Asus"], "tags IN [computer]"], "sort": ["price:asc"]])
        XCTAssertEqual(ids(listed), [2, 1])
        let missing = try await search(index, ["filter": "secret IS NULL"])
        XCTAssertEqual(ids(missing), [5])
        let empty = try await search(index, ["filter": "tags IS EMPTY"])
        XCTAssertEqual(ids(empty), [5])
        let paged = try await search(index, ["hitsPerPage": 2, "page": 2, "facets": ["brand"]])
        XCTAssertEqual(paged["totalHits"], 5)
        XCTAssertEqual(paged["totalPages"], 3)
        XCTAssertEqual(ids(paged).count, 2)
        XCTAssertEqual(paged["facetDistribution"]?["brand"]?["Apple"], 1)
        XCTAssertEqual(paged["facetStats"]?["brand"], nil)
    }

    func testBadFiltersAreRefusedWithMeilisearchCodes() async throws {
        let index = products()
        for filter in ["price >", "brand = 'open", "(price > 1", "name = x", "price ! 3", "_geoRadius(1, 2, 3)", "brand IN [a, b"] {
            do {
                _ = try await search(index, ["filter": .string(filter)])
                XCTFail("\(filter) was accepted")
            } catch let error as SearchError {
                XCTAssertEqual(error.status, 400, filter)
                XCTAssertEqual(error.code, "invalid_search_filter", filter)
            }
        }
        do {
            _ = try await search(index, ["sort": ["brand:asc"]])
            XCTFail("an unsortable attribute was accepted")
        } catch let error as SearchError {
            XCTAssertEqual(error.code, "invalid_search_sort")
        }
        let deep = String(repeating: "(", count: 200) + "price > 1" + String(repeating: ")", count: 200)
        do {
            _ = try await search(index, ["filter": .string(deep)])
            XCTFail("a deep filter was accepted")
        } catch let error as SearchError {
            XCTAssertEqual(error.code, "invalid_search_filter")
        }
    }

    func testHiddenColumnsAreNotSearchedReturnedOrNameable() async throws {
        let index = products()
        let view = SearchView(columns: ["id", "name", "price"], rows: { $0("price")?.doubleValue ?? 0 < 1000 })
        let visible = try await search(index, ["q": "", "facets": ["price"]], view: view)
        XCTAssertEqual(Set(ids(visible)), [3, 4, 5], "rows the policy hides are not counted")
        XCTAssertEqual(visible["estimatedTotalHits"], 3)
        XCTAssertNil(first(visible)?["secret"])
        let r4 = try await found(index, ["q": "ikea"], view: view)
        XCTAssertEqual(r4, [], "a hidden column is not searched")
        do {
            _ = try await search(index, ["filter": "secret = a"], view: view)
            XCTFail("a hidden column was filterable")
        } catch let error as SearchError {
            XCTAssertEqual(error.status, 403)
            XCTAssertEqual(error.code, "MB884")
        }
    }

    func testHighlightCropAndDocumentUpdates() async throws {
        let index = products()
        let response = try await search(index, ["q": "gaming lap", "attributesToHighlight": ["name"], "showRankingScore": true])
        XCTAssertEqual(first(response)?["_formatted"]?["name"], "<em>Gaming</em> <em>lap</em>top")
        let score = first(response)?["_rankingScore"]?.doubleValue ?? -1
        XCTAssertTrue(score > 0 && score <= 1)
        index.upsert([["id": 2, "name": "Office chair", "brand": "Asus", "price": 200, "tags": []]])
        let r5 = try await found(index, ["q": "gaming"])
        XCTAssertEqual(r5, [])
        let r6 = try await found(index, ["q": "office"])
        XCTAssertEqual(r6, [2])
        index.delete(keys: ["2"])
        let r7 = try await found(index, ["q": "office"])
        XCTAssertEqual(r7, [])
        XCTAssertEqual(index.documentCount, 4)
        let long = SearchIndex(uid: "t", source: "s", entity: "e", primaryKey: "id", settings: IndexSettings(), createdAt: Date(), updatedAt: Date())
        long.upsert([["id": "a", "body": "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"]])
        let cropped = try await search(long, ["q": "twelve", "attributesToCrop": ["body:4"]])
        XCTAssertEqual(first(cropped)?["_formatted"]?["body"], "…ten eleven twelve thirteen…")
    }

    /// Found in review: negative crop lengths trapped, huge tags multiplied the answer, and
    /// short texts lost their punctuation when cropped.
    func testHostileFormattingIsRefusedAndShortTextsStayWhole() async throws {
        let index = products()
        for body: JSONObject in [
            ["q": "lamp", "attributesToCrop": ["name:-100"]], ["q": "lamp", "attributesToCrop": ["name:-9223372036854775808"]],
            ["q": "lamp", "highlightPreTag": .string(String(repeating: "x", count: 5_000))],
        ] {
            do {
                _ = try await search(index, body)
                XCTFail("\(body) was accepted")
            } catch let error as SearchError {
                XCTAssertEqual(error.status, 400)
            }
        }
        let short = SearchIndex(uid: "s", source: "s", entity: "e", primaryKey: "id", settings: IndexSettings(), createdAt: Date(), updatedAt: Date())
        short.upsert([["id": 1, "body": "Hello, world!"], ["id": 2, "body": "..."]])
        let cropped = try await search(short, ["q": "hello", "attributesToCrop": ["body:5"], "attributesToHighlight": ["body"]])
        XCTAssertEqual(first(cropped)?["_formatted"]?["body"], "<em>Hello</em>, world!")
        let all = try await search(short, ["q": "", "attributesToCrop": ["body"]])
        XCTAssertEqual(all["hits"]?.arrayValue?.compactMap { $0["_formatted"]?["body"]?.stringValue }, ["Hello, world!", "..."])
    }

    func testSettingsValidateAndRoundTrip() throws {
        var settings = IndexSettings()
        XCTAssertThrowsError(try settings.apply(["rankingRules": ["words", "nonsense"]]))
        XCTAssertThrowsError(try settings.apply(["searchableAttributes": "name"]))
        XCTAssertThrowsError(try settings.apply(["unknownSetting": true]))
        try settings.apply(["typoTolerance": ["minWordSizeForTypos": ["oneTypo": 4]], "synonyms": ["phone": ["iphone"]], "rankingRules": ["words", "price:desc"]])
        XCTAssertEqual(settings.typoTolerance.oneTypo, 4)
        let again = IndexSettings(stored: settings.json)
        XCTAssertEqual(again.json, settings.json)
        try settings.apply(["rankingRules": nil])
        XCTAssertEqual(settings.rankingRules, IndexSettings.defaultRankingRules)
        try settings.apply(["faceting": ["maxValuesPerFacet": 5, "sortFacetValuesBy": ["*": "count"]]])
        XCTAssertEqual(settings.json["faceting"]?["sortFacetValuesBy"]?["*"], "count")
        try settings.apply(["faceting": nil])
        XCTAssertEqual(settings.json["faceting"], ["maxValuesPerFacet": 100, "sortFacetValuesBy": ["*": "alpha"]])
    }

    func testTypoDistanceIsDamerauAndBounded() {
        var distance = TypoDistance()
        func d(_ a: String, _ b: String, _ limit: Int = 2, prefix: Bool = false) -> Int? {
            distance.distance(a.unicodeScalars.map(\.value), b.unicodeScalars.map(\.value), limit: limit, prefix: prefix)
        }
        XCTAssertEqual(d("laptop", "laptpo"), 1)
        XCTAssertEqual(d("kitten", "sitting", 3), 3)
        XCTAssertNil(d("kitten", "sitting", 2))
        XCTAssertEqual(d("lapt", "laptop", prefix: true), 0)
        XCTAssertEqual(d("lpat", "laptop", 1, prefix: true), 1)
        XCTAssertNil(d("abcdef", "uvwxyz"))
    }
}
