import XCTest
@testable import Runtime

final class JSONValueTests: XCTestCase {
    func testParsesEveryKindAndRoundTrips() throws {
        let value = try JSONValue.parse(Array(#"{"a":1,"b":1.5,"c":"x","d":[true,null],"e":{"f":-2}}"#.utf8))
        XCTAssertEqual(value["a"], .integer(1))
        XCTAssertEqual(value["b"], .number(1.5))
        XCTAssertEqual(value["c"], .string("x"))
        XCTAssertEqual(value["d"], .array([.bool(true), .null]))
        XCTAssertEqual(value["e"]?["f"]?.intValue, -2)
        XCTAssertEqual(try JSONValue.parse(value.encoded()), value)
    }

    func testRejectsWhatIsNotJSONWithAMessage() {
        for bad in ["{", "{\"a\":}", "nul", "", "[1,]", "\u{0}"] {
            XCTAssertThrowsError(try JSONValue.parse(Array(bad.utf8)), bad) { error in
                XCTAssertFalse("\(error)".isEmpty)
            }
        }
    }

    func testObjectKeepsInsertionOrderAndRemovesKeys() {
        var object: JSONObject = ["z": 1, "a": 2]
        object["m"] = 3
        XCTAssertEqual(object.keys, ["z", "a", "m"])
        object["a"] = nil
        XCTAssertEqual(object.keys, ["z", "m"])
        XCTAssertEqual(object.count, 2)
    }
}

final class JSONParserTests: XCTestCase {
    func testKeepsDocumentOrderOfKeys() throws {
        let value = try JSONValue.parse(Array(#"{"z":1,"a":2,"m":{"y":1,"b":2}}"#.utf8))
        XCTAssertEqual(value.objectValue?.keys, ["z", "a", "m"])
        XCTAssertEqual(value["m"]?.objectValue?.keys, ["y", "b"])
        XCTAssertEqual(value.jsonString, #"{"z":1,"a":2,"m":{"y":1,"b":2}}"#)
    }

    func testStringsEscapesAndUnicode() throws {
        let value = try JSONValue.parse(Array(#"["a\"b\\c\/d\n", "\u00e9\ud83d\ude00", "日本"]"#.utf8))
        XCTAssertEqual(value, ["a\"b\\c/d\n", "é😀", "日本"])
        XCTAssertEqual(try JSONValue.parse(value.encoded()), value)
        XCTAssertEqual(JSONValue.string("\u{1}\t").jsonString, #""\u0001\t""#)
    }

    func testNumbers() throws {
        XCTAssertEqual(try JSONValue.parse(Array("-0".utf8)), .integer(0))
        XCTAssertEqual(try JSONValue.parse(Array("9223372036854775807".utf8)), .integer(Int64.max))
        XCTAssertEqual(try JSONValue.parse(Array("9223372036854775808".utf8)), .number(9223372036854775808))
        XCTAssertEqual(try JSONValue.parse(Array("1.5e3".utf8)), .number(1500))
        XCTAssertEqual(JSONValue.number(2.5).jsonString, "2.5")
        XCTAssertEqual(JSONValue.number(.nan).jsonString, "null")
    }

    func testRejectsNonStandardJSONWithAPosition() {
        let cases = ["[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "[1 2]", "{'a':1}", "// c\n1", "\"\u{1}\"", "\"\\x\"",
                     "\"\\ud800\"", "NaN", "1e999", "{\"a\"}", "tru", "[", "\"abc"]
        for text in cases {
            XCTAssertThrowsError(try JSONValue.parse(Array(text.utf8)), text) { error in
                XCTAssertTrue("\(error)".contains("line"), "\(text): \(error)")
            }
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22]), "invalid UTF-8")
        XCTAssertThrowsError(try JSONValue.parse(Array("{\n  \"a\": x}".utf8))) { error in
            XCTAssertTrue("\(error)".contains("line 2, column 8"), "\(error)")
        }
    }

    func testDeepNestingFailsCleanly() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertThrowsError(try JSONValue.parse(Array(deep.utf8))) { error in
            XCTAssertTrue("\(error)".contains("nesting"))
        }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        XCTAssertNoThrow(try JSONValue.parse(Array(fine.utf8)))
    }

    func testObjectEqualityIgnoresKeyOrder() throws {
        XCTAssertEqual(try JSONValue.parse(Array(#"{"a":1,"b":2}"#.utf8)), try JSONValue.parse(Array(#"{"b":2,"a":1}"#.utf8)))
    }

    /// JSONValue is ExpressibleByNilLiteral, so `value == .null ? nil : value` yields `.null`, not
    /// nil, and a merge written that way stored nulls instead of removing keys (GoTrue metadata).
    func testNonNullRemovesKeysInAMerge() {
        var metadata: JSONObject = ["plan": "pro", "seats": 1]
        let changes: JSONObject = ["plan": .null, "seats": 5]
        for (key, value) in changes { metadata[key] = value.nonNull }
        XCTAssertEqual(metadata, ["seats": 5])
        XCTAssertEqual(metadata.keys, ["seats"])
        XCTAssertNil(JSONValue.null.nonNull)
        XCTAssertEqual(JSONValue.integer(0).nonNull, .integer(0))
    }
    /// Past `indexedFrom` keys an object also keeps positions by key: reads, replacements and
    /// removals answer the same on both sides of that line, and equal objects hash alike in any order.
    func testLargeObjectsLookUpReplaceAndRemoveAsSmallOnes() {
        var object = JSONObject()
        for index in 0..<40 { object["k\(index)"] = .integer(Int64(index)) }
        XCTAssertEqual(object.count, 40)
        XCTAssertEqual(object["k33"], .integer(33))
        object["k5"] = "five"
        XCTAssertEqual(object.keys[5], "k5", "a replaced value keeps its place")
        object["k0"] = nil
        object["k39"] = nil
        XCTAssertNil(object["k0"])
        XCTAssertEqual(object["k38"], .integer(38))
        XCTAssertEqual(object["k5"], "five")
        XCTAssertEqual(object.keys.first, "k1")
        XCTAssertEqual(Array(object.map(\.key)), object.keys)
        var reversed = JSONObject()
        for key in object.keys.reversed() { reversed[key] = object[key] }
        XCTAssertEqual(reversed, object)
        XCTAssertEqual(reversed.hashValue, object.hashValue)
        var small: JSONObject = ["a": 1, "b": [1, 2]]
        let same: JSONObject = ["b": [1, 2], "a": 1]
        XCTAssertEqual(Set([JSONValue.object(small), .object(same)]).count, 1)
        small["b"] = 3
        XCTAssertNotEqual(small, same)
        XCTAssertNotEqual(JSONObject(["a": 1]), JSONObject(["a": 1, "b": 2]))
    }
}
