import Connectors
import Foundation
import Runtime

/// pg_graphql 1.6's names. By default SQL names are used as they are (`posts` →
/// `postsCollection`, `insertIntopostsCollection`, FK to `authors` → field `authors`); with
/// `inflect_names` snake_case becomes PascalCase types and camelCase fields (`blog_post` →
/// `BlogPost`, `blogPostCollection`, `author_id` → `author`).
public struct GraphQLNaming: Sendable {
    public var inflect: Bool

    public init(inflect: Bool) {
        self.inflect = inflect
    }

    /// `blog_post` → `BlogPost`.
    public static func pascal(_ name: String) -> String {
        name.split(separator: "_", omittingEmptySubsequences: true).map { part in
            part.prefix(1).uppercased() + part.dropFirst()
        }.joined()
    }

    /// `blog_post` → `blogPost`, `author_id` → `authorId`.
    public static func camel(_ name: String) -> String {
        let pascal = pascal(name)
        guard let first = pascal.first else { return name }
        return first.lowercased() + pascal.dropFirst()
    }

    /// A GraphQL name: `/[_A-Za-z][_0-9A-Za-z]*/`, not starting with `__` (reserved for introspection).
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, GraphQLLexer.isNameStart(first) else { return false }
        guard !(bytes.count >= 2 && bytes[0] == 0x5F && bytes[1] == 0x5F) else { return false }
        return bytes.allSatisfy { GraphQLLexer.isNameStart($0) || GraphQLLexer.isDigit($0) }
    }

    /// The type of an entity's rows.
    public func typeName(_ entity: String) -> String { inflect ? Self.pascal(entity) : entity }

    /// A column's field.
    public func fieldName(_ column: String) -> String { inflect ? Self.camel(column) : column }

    /// The Query field of an entity's rows: `postsCollection`, `blogPostCollection`.
    public func collectionField(_ entity: String) -> String {
        (inflect ? Self.camel(entity) : entity) + "Collection"
    }

    public func byPkField(_ entity: String) -> String {
        (inflect ? Self.camel(entity) : entity) + "ByPk"
    }

    public func insertField(_ type: String) -> String { "insertInto\(type)Collection" }
    public func updateField(_ type: String) -> String { "update\(type)Collection" }
    public func deleteField(_ type: String) -> String { "deleteFrom\(type)Collection" }

    /// The field a relation appears as on the entity it leaves. To-one: the target's name by
    /// default; inflected, the foreign-key column without `_id` (`author_id` → `author`).
    /// To-many: `<target>Collection`.
    public func relationField(_ relation: Relation, targetEntity: String) -> String {
        if relation.isToOne {
            if inflect {
                if relation.kind == .manyToOne, relation.fromColumns.count == 1, relation.fromColumns[0].hasSuffix("_id"), relation.fromColumns[0].count > 3 {
                    return Self.camel(String(relation.fromColumns[0].dropLast(3)))
                }
                return Self.camel(targetEntity)
            }
            return targetEntity
        }
        return collectionField(targetEntity)
    }

    /// An enum's values as GraphQL names, or nil when one cannot be (then the column is a String).
    public static func enumValues(_ values: [String]) -> [String]? {
        values.allSatisfy(isValid) && !values.contains(where: { ["true", "false", "null"].contains($0) }) ? values : nil
    }
}

/// `@graphql({...})` directives in a comment (pg_graphql's way of renaming, describing and
/// bounding entities and columns), and the comment's text without them as the description.
struct CommentDirective {
    var settings: JSONObject = [:]
    var description: String?

    init(_ comment: String?) {
        guard let comment else { return }
        guard let range = comment.range(of: "@graphql(") else {
            description = comment
            return
        }
        // The JSON object runs to the matching `)`: the last one in the comment.
        let tail = comment[range.upperBound...]
        if let close = tail.lastIndex(of: ")"), let value = try? JSONValue.parse(Array(tail[..<close].utf8)), let object = value.objectValue {
            settings = object
        }
        let rest = (comment[..<range.lowerBound] + (tail.lastIndex(of: ")").map { tail[tail.index(after: $0)...] } ?? "")).trimmingWhitespace()
        description = settings["description"]?.stringValue ?? (rest.isEmpty ? nil : rest)
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
