import CMongoc
import Foundation
import Logging
import Runtime
import XCTest
@testable import Connectors

/// The MongoDB dialect without a server: golden pipelines (typed operands, SQL's null rules,
/// anchored LIKE, embeds as $lookup), values typed by the sampled field, BSON built with
/// libbson's builders and read back byte for byte, and the sampler's type rules.
final class MongoRendererTests: XCTestCase {
    let model: SchemaModel = {
        let users = EntityName(schema: "shop", name: "users")
        let orders = EntityName(schema: "shop", name: "orders")
        return SchemaModel(
            entities: [
                Entity(schema: "shop", name: "users", kind: .collection, columns: [
                    Column(name: "_id", type: .string, nativeType: "objectId", nullable: false),
                    Column(name: "name", type: .string, nativeType: "string"),
                    Column(name: "age", type: .integer, nativeType: "int"),
                    Column(name: "tags", type: .array, nativeType: "array<string>", elementType: .string),
                    Column(name: "address", type: .json, nativeType: "object"),
                    Column(name: "score", type: .json, nativeType: "mixed(int,string)"),
                    Column(name: "joined", type: .datetime, nativeType: "date"),
                ], primaryKey: ["_id"]),
                Entity(schema: "shop", name: "orders", kind: .collection, columns: [
                    Column(name: "_id", type: .string, nativeType: "objectId", nullable: false),
                    Column(name: "user_id", type: .string, nativeType: "objectId"),
                    Column(name: "total", type: .number, nativeType: "decimal"),
                ], primaryKey: ["_id"]),
            ],
            relations: [
                Relation(constraint: "orders_user_id_fkey", kind: .manyToOne, from: orders, fromColumns: ["user_id"], to: users, toColumns: ["_id"]),
                Relation(constraint: "orders_user_id_fkey", kind: .oneToMany, from: users, fromColumns: ["_id"], to: orders, toColumns: ["user_id"]),
            ])
    }()

    func pipeline(_ entity: String, _ items: [(String, String)]) throws -> [BSON] {
        var renderer = MongoRenderer()
        return try renderer.pipeline(try RestPlanner(model: model).read(entity, try RestQueryParser.parse(items)))
    }

    func match(_ items: [(String, String)]) throws -> BSON? {
        try pipeline("users", items).first { stage in
            if case .document(let document) = stage { return document["$match"] != nil }
            return false
        }.flatMap { stage -> BSON? in
            if case .document(let document) = stage { return document["$match"] }
            return nil
        }
    }

    func testFiltersAreTypedByTheSampledField() throws {
        XCTAssertEqual(try match([("age", "gt.30")]), .document(["age": .document(["$gt": .int32(30)])]))
        let id = "5f0c1e6e8b3d4a2b9c8d7e6f"
        XCTAssertEqual(try match([("_id", "eq.\(id)")]), .document(["_id": .document(["$eq": .objectId(ObjectID(hex: id)!)])]))
        // A string field keeps a 24-hex operand as a string.
        XCTAssertEqual(try match([("name", "eq.\(id)")]), .document(["name": .document(["$eq": .string(id)])]))
        // A mixed field takes every reading of the operand.
        XCTAssertEqual(try match([("score", "eq.5")]), .document(["score": .document(["$in": .array([.int32(5), .string("5")])])]))
        XCTAssertThrowsError(try match([("age", "eq.old")])) { error in XCTAssertEqual((error as? RestError)?.code, "MB336") }
        XCTAssertThrowsError(try match([("_id", "eq.123")])) { error in XCTAssertEqual((error as? RestError)?.code, "MB336") }
        XCTAssertThrowsError(try match([("name", "fts.x")])) { error in XCTAssertEqual((error as? RestError)?.code, "MB337") }
    }

    func testNegationAndNullFollowSQL() throws {
        XCTAssertEqual(try match([("age", "neq.3")]), .document(["age": .document(["$nin": .array([.int32(3), .null])])]))
        XCTAssertEqual(
            try match([("age", "not.gt.3")]),
            .document(["$nor": .array([.document(["age": .document(["$gt": .int32(3)])])]), "age": .document(["$ne": .null])]))
        XCTAssertEqual(try match([("age", "is.null")]), .document(["age": .null]))
        XCTAssertEqual(try match([("age", "not.is.null")]), .document(["age": .document(["$ne": .null])]))
    }

    func testValuesNeverBecomeOperators() throws {
        // `$where` is a string under $eq, never a key; LIKE is anchored with every other character literal.
        XCTAssertEqual(try match([("name", "eq.$where")]), .document(["name": .document(["$eq": .string("$where")])]))
        XCTAssertEqual(MongoRenderer.regex(fromLike: "a.b%c_\\%"), "^a\\.b[\\s\\S]*c[\\s\\S]%(?![\\s\\S])")
        XCTAssertEqual(try match([("address->>city", "eq.Paris")]), .document(["address.city": .document(["$eq": .string("Paris")])]))
        // `->>` is text, which a stored number equals too: both readings.
        XCTAssertEqual(try match([("address->>zip", "eq.75001")]), .document(["address.zip": .document(["$in": .array([.string("75001"), .int32(75001)])])]))
        XCTAssertThrowsError(try match([("address->>$where", "eq.1")])) { error in XCTAssertEqual((error as? RestError)?.code, "MB337") }
        XCTAssertThrowsError(try MongoValues.value(["$gt": 1], native: "object", column: "address", pointer: "/address")) { error in
            XCTAssertEqual((error as? RestError)?.code, "MB335")
        }
    }

    func testOrderPutsNullsWherePostgreSQLWould() throws {
        let stages = try pipeline("users", [("select", "name"), ("order", "age.desc")])
        guard case .document(let flags)? = stages.first(where: { if case .document(let d) = $0 { d["$addFields"] != nil } else { false } }),
            case .document(let sort)? = stages.first(where: { if case .document(let d) = $0 { d["$sort"] != nil } else { false } })
        else { return XCTFail("no sort stages in \(stages)") }
        guard case .document(let added)? = flags["$addFields"], let flag = added.pairs.first?.key, case .document(let keys)? = sort["$sort"] else {
            return XCTFail("malformed sort")
        }
        // DESC: nulls first, so the null flag sorts descending, then the field.
        XCTAssertEqual(keys.pairs.map(\.key), [flag, "age", "_id"])
        XCTAssertEqual(keys[flag], .int32(-1))
        XCTAssertEqual(keys["age"], .int32(-1))
    }

    func testPlainReadsAreFindsAndTheRestAggregations() throws {
        func find(_ items: [(String, String)]) throws -> MongoFind? {
            var renderer = MongoRenderer()
            return try renderer.find(try RestPlanner(model: model).read("users", try RestQueryParser.parse(items)))
        }
        let plain = try find([("select", "name"), ("age", "gt.3"), ("limit", "5"), ("offset", "2")])
        XCTAssertEqual(plain?.filter, ["age": .document(["$gt": .int32(3)])])
        XCTAssertEqual(plain?.projection, ["name": .int32(1), "_id": .int32(0)])
        XCTAssertEqual(plain?.limit, 5)
        XCTAssertEqual(plain?.skip, 2)
        XCTAssertNil(try find([("select", "name"), ("order", "name")]), "null placement needs the pipeline")
        XCTAssertNil(try find([("select", "name,orders(total)")]), "embeds need $lookup")
    }

    func testEmbedsBecomeLookupsWithTheChildsPipeline() throws {
        let stages = try pipeline("orders", [("select", "total,users(name)")])
        let lookup = stages.compactMap { stage -> BSONDocument? in
            if case .document(let document) = stage, case .document(let lookup)? = document["$lookup"] { return lookup }
            return nil
        }.first
        XCTAssertEqual(lookup?["from"], .string("users"))
        XCTAssertEqual(lookup?["localField"], .string("user_id"))
        XCTAssertEqual(lookup?["foreignField"], .string("_id"))
        XCTAssertEqual(lookup?["as"], .string("_mb_e0"))
    }

    func testBSONBuiltWithLibbsonReadsBackTheSame() throws {
        let document: BSONDocument = [
            "s": .string("é\u{0}x"), "i": .int32(-7), "l": .int64(1 << 40), "d": .double(2.5), "b": .bool(true), "n": .null,
            "o": .objectId(ObjectID(hex: "5f0c1e6e8b3d4a2b9c8d7e6f")!), "t": .date(1_704_164_645_123), "dec": .decimal128("10.50"),
            "bin": .binary(subtype: 4, Array(repeating: 7, count: 16)), "r": .regex(pattern: "^a", options: "i"),
            "a": .array([.int32(1), .document(["k": .string("v")])]),
        ]
        let read = try document.withBSON { built in try BSONDocument(bson: built) }
        XCTAssertEqual(read, document)
        let built = try document.withBSON { built -> Int in
            let data = bson_get_data(built)!
            return Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        }
        XCTAssertEqual(document.encodedSize, built, "the size check before a write is libbson's size")
        var out: [UInt8] = []
        MongoJSON.write(.document(read), into: &out)
        let json = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(json.contains(#""t":"2024-01-02T03:04:05.123Z""#), json)
        XCTAssertTrue(json.contains(#""dec":10.50"#), json)
        XCTAssertTrue(json.contains(#""o":"5f0c1e6e8b3d4a2b9c8d7e6f""#), json)
        XCTAssertTrue(json.contains(#""bin":"07070707-0707-0707-0707-070707070707""#), json)
        XCTAssertEqual(MongoJSON.milliseconds("2024-01-02T04:04:05.123+01:00"), 1_704_164_645_123)
    }

    /// Change stream events (which the test server cannot produce) as realtime sees them.
    func testChangeStreamEventsBecomeChangeEvents() throws {
        let source = try MongoSource(
            name: "shop", url: "mongodb://127.0.0.1:1", database: "shop", model: model, changeStreams: true, settings: .init(),
            logger: Logger(label: "test"))
        XCTAssertTrue(source.canCaptureChanges)
        let stream = MongoChangeStream(source: source, logger: Logger(label: "test"))
        let id = BSON.objectId(ObjectID(hex: "5f0c1e6e8b3d4a2b9c8d7e6f")!)
        let inserted = stream.event([
            "operationType": .string("insert"), "ns": .document(["db": .string("shop"), "coll": .string("users")]),
            "fullDocument": .document(["_id": id, "name": .string("ann"), "age": .int32(3)]), "wallTime": .date(1_704_164_645_123),
        ])
        XCTAssertEqual(inserted?.kind, .insert)
        XCTAssertEqual(inserted?.schema, "shop")
        XCTAssertEqual(inserted?.table, "users")
        XCTAssertEqual(inserted?.record["name"], .string("ann"))
        XCTAssertEqual(inserted?.record["_id"], .string("5f0c1e6e8b3d4a2b9c8d7e6f"))
        XCTAssertEqual(inserted?.record["tags"], .null, "rows keep the model's shape")
        XCTAssertEqual(inserted?.commitTimestamp, "2024-01-02T03:04:05.123Z")
        let deleted = stream.event([
            "operationType": .string("delete"), "ns": .document(["db": .string("shop"), "coll": .string("users")]), "documentKey": .document(["_id": id]),
        ])
        XCTAssertEqual(deleted?.kind, .delete)
        XCTAssertEqual(deleted?.oldRecord["_id"], .string("5f0c1e6e8b3d4a2b9c8d7e6f"))
        XCTAssertNil(stream.event(["operationType": .string("drop"), "ns": .document(["db": .string("shop"), "coll": .string("users")])]))
        XCTAssertNil(stream.event(["operationType": .string("insert"), "ns": .document(["db": .string("shop"), "coll": .string("unknown")])]))
    }

    func testSamplingJoinsTypes() {
        XCTAssertEqual(FieldSet.resolve(["int", "long"], elements: []).1, "long")
        XCTAssertEqual(FieldSet.resolve(["int", "double"], elements: []).1, "double")
        XCTAssertEqual(FieldSet.resolve(["string", "int"], elements: []).1, "mixed(int,string)")
        XCTAssertEqual(FieldSet.resolve(["array"], elements: ["objectId"]).1, "array<objectId>")
        XCTAssertEqual(MongoIntrospector.referenceStem("user_id", plural: false), "user")
        XCTAssertEqual(MongoIntrospector.referenceStem("authorId", plural: false), "author")
        XCTAssertEqual(MongoIntrospector.referenceStem("tag_ids", plural: true), "tag")
        XCTAssertNil(MongoIntrospector.referenceStem("_id", plural: false))
    }
}
