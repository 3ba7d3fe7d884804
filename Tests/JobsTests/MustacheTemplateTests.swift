import Runtime
import XCTest

@testable import Jobs

final class MustacheTemplateTests: XCTestCase {
    func testVariablesAreEscapedInHTMLOnlyAndTriplesNever() throws {
        let template = try MustacheTemplate("<p>Hi {{name}}, {{{raw}}} {{& raw}} {{! a note }}{{missing}}!</p>")
        let values: JSONObject = ["name": "<Ada & \"Bob\">", "raw": "<b>x</b>"]
        XCTAssertEqual(template.render(values, html: true), "<p>Hi &lt;Ada &amp; &quot;Bob&quot;&gt;, <b>x</b> <b>x</b> !</p>")
        XCTAssertEqual(template.render(values, html: false), "<p>Hi <Ada & \"Bob\">, <b>x</b> <b>x</b> !</p>")
        XCTAssertEqual(template.names, ["name", "raw", "missing"])
    }

    func testSectionsListsInvertedAndDottedNames() throws {
        let template = try MustacheTemplate("{{#items}}[{{name}}:{{qty}}]{{/items}}{{^items}}none{{/items}}{{#vip}} VIP{{/vip}} {{user.email}}")
        XCTAssertEqual(
            template.render(["items": [["name": "tea", "qty": 2], ["name": "cake", "qty": 1.5]], "vip": true, "user": ["email": "a@b.c"]], html: true),
            "[tea:2][cake:1.5] VIP a@b.c")
        XCTAssertEqual(template.render(["items": []], html: true), "none ")
    }

    func testMalformedTemplatesAreRefused() {
        XCTAssertThrowsError(try MustacheTemplate("{{name"))
        XCTAssertThrowsError(try MustacheTemplate("{{#a}}x"))
        XCTAssertThrowsError(try MustacheTemplate("{{#a}}x{{/b}}"))
        XCTAssertThrowsError(try MustacheTemplate("{{> partial}}"))
        XCTAssertThrowsError(try MustacheTemplate("{{}}"))
    }
}
