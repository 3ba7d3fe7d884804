import Runtime
import XCTest

@testable import Search

final class VectorIndexTests: XCTestCase {
    /// Seeded clustered vectors: the shape real embeddings have, where an HNSW graph is expected
    /// to find the true neighbours.
    struct Points {
        var state: UInt64 = 11
        mutating func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        mutating func clustered(_ centres: [[Float]]) -> [Float] {
            let centre = centres[Int(next() * 1000 + 1000) % centres.count]
            return centre.map { $0 + next() * 0.5 }
        }
    }

    func testTheGraphFindsWhatTheExactScanFinds() {
        var points = Points()
        let centres = (0..<20).map { _ in (0..<8).map { _ in points.next() * 4 } }
        for metric in [VectorMetric.euclidean, .cosine, .dotproduct] {
            let index = VectorIndex(name: "t", dimension: 8, metric: metric)
            index.upsert((0..<5_200).map { VectorRecord(id: "v\($0)", values: points.clustered(centres), metadata: ["n": .integer(Int64($0 % 10))]) }, namespace: "")
            var hits = 0
            for _ in 0..<50 {
                let query = points.clustered(centres)
                let approximate = index.query(query, topK: 10, filter: nil, namespace: "", includeValues: false, includeMetadata: false).map(\.id)
                let exact = index.query(query, topK: 10, filter: nil, namespace: "", includeValues: false, includeMetadata: false, exact: true).map(\.id)
                XCTAssertEqual(exact.count, 10)
                hits += Set(approximate).intersection(exact).count
            }
            XCTAssertGreaterThanOrEqual(Double(hits) / 500, 0.95, "recall@10 with \(metric)")
        }
    }

    func testFiltersNamespacesUpdatesAndDeletes() throws {
        let index = VectorIndex(name: "t", dimension: 3, metric: .cosine)
        index.upsert([
            VectorRecord(id: "a", values: [2, 0, 0], metadata: ["genre": "drama", "year": 2020, "tags": ["x", "y"]]),
            VectorRecord(id: "b", values: [0, 3, 0], metadata: ["genre": "comedy", "year": 2010]),
            VectorRecord(id: "c", values: [1, 1, 0], metadata: nil),
        ], namespace: "one")
        index.upsert([VectorRecord(id: "a", values: [0, 0, 1], metadata: nil)], namespace: "two")
        XCTAssertEqual(index.namespaces, ["one": 3, "two": 1])
        XCTAssertEqual(index.record("a", namespace: "one")?.values, [2, 0, 0], "values come back as sent, not normalized")
        let first = index.query([1, 0, 0], topK: 3, filter: nil, namespace: "one", includeValues: true, includeMetadata: true)
        XCTAssertEqual(first.map(\.id), ["a", "c", "b"])
        XCTAssertEqual(first[0].score, 1, accuracy: 1e-5)
        let filter = try MetadataFilter.parse(["$or": [["genre": ["$eq": "comedy"]], ["year": ["$gte": 2015]]]])
        XCTAssertEqual(index.query([1, 0, 0], topK: 3, filter: filter, namespace: "one", includeValues: false, includeMetadata: false).map(\.id), ["a", "b"])
        let tags = try MetadataFilter.parse(["tags": ["$in": ["y"]]])
        XCTAssertEqual(index.ids(matching: tags!, namespace: "one"), ["a"])
        let missing = try MetadataFilter.parse(["genre": ["$exists": false]])
        XCTAssertEqual(index.ids(matching: missing!, namespace: "one"), ["c"])
        XCTAssertEqual(index.delete(ids: ["a", "zzz"], namespace: "one"), 1)
        XCTAssertEqual(index.query([1, 0, 0], topK: 3, filter: nil, namespace: "one", includeValues: false, includeMetadata: false).map(\.id), ["c", "b"])
        XCTAssertEqual(index.list(prefix: nil, limit: 1, after: nil, namespace: "one").ids, ["b"])
        XCTAssertEqual(index.list(prefix: nil, limit: 1, after: "b", namespace: "one").ids, ["c"])
        index.deleteAll(namespace: "two")
        XCTAssertEqual(index.namespaces, ["one": 2])
    }

    func testBadFiltersAreRefused() {
        for bad: JSONValue in [["year": ["$between": 1]], ["$nor": []], ["year": ["$gt": "x"]], ["tags": ["$in": "x"]], "text", ["$and": []]] {
            XCTAssertThrowsError(try MetadataFilter.parse(bad), "\(bad)") { error in
                XCTAssertEqual((error as? SearchError)?.code, "MB897")
            }
        }
    }
}
