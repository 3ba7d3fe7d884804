import Foundation
import Runtime

/// The Mustache that e-mail templates use: `{{name}}` (HTML-escaped when rendering HTML),
/// `{{{name}}}` and `{{& name}}` (never escaped), dotted names, sections `{{#name}}…{{/name}}`
/// (shown when truthy, once per item of a list, with the item's fields in scope), inverted
/// sections `{{^name}}…{{/name}}` and comments `{{! … }}`. Partials, lambdas and delimiter
/// changes are not supported and are refused when parsed.
public struct MustacheTemplate: Sendable {
    indirect enum Node: Sendable {
        case text(String)
        case variable(String, escaped: Bool)
        case section(String, inverted: Bool, [Node])
    }

    let nodes: [Node]

    public init(_ source: String) throws(MustacheError) {
        var index = source.startIndex
        var stack: [(name: String, inverted: Bool, nodes: [Node])] = [("", false, [])]
        func append(_ node: Node) { stack[stack.count - 1].nodes.append(node) }
        while index < source.endIndex {
            guard let open = source.range(of: "{{", range: index..<source.endIndex) else {
                append(.text(String(source[index...])))
                break
            }
            if open.lowerBound > index { append(.text(String(source[index..<open.lowerBound]))) }
            let triple = source[open.upperBound...].hasPrefix("{")
            let closer = triple ? "}}}" : "}}"
            guard let close = source.range(of: closer, range: open.upperBound..<source.endIndex) else { throw .unclosedTag }
            var tag = source[source.index(open.upperBound, offsetBy: triple ? 1 : 0)..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            index = close.upperBound
            if triple {
                append(.variable(tag, escaped: false))
                continue
            }
            guard let sigil = tag.first else { throw .emptyTag }
            switch sigil {
            case "!":
                continue
            case "&":
                tag.removeFirst()
                append(.variable(tag.trimmingCharacters(in: .whitespaces), escaped: false))
            case "#", "^":
                tag.removeFirst()
                stack.append((tag.trimmingCharacters(in: .whitespaces), sigil == "^", []))
            case "/":
                tag.removeFirst()
                let name = tag.trimmingCharacters(in: .whitespaces)
                guard stack.count > 1, stack[stack.count - 1].name == name else { throw .unbalancedSection(name) }
                let section = stack.removeLast()
                append(.section(section.name, inverted: section.inverted, section.nodes))
            case ">", "=", "<", "$":
                throw .unsupported(String(sigil))
            default:
                append(.variable(tag, escaped: true))
            }
        }
        guard stack.count == 1 else { throw .unbalancedSection(stack[stack.count - 1].name) }
        nodes = stack[0].nodes
    }

    /// Every top-level name the template reads (a section's own name included).
    public var names: Set<String> {
        func collect(_ nodes: [Node], into names: inout Set<String>) {
            for node in nodes {
                switch node {
                case .text: break
                case .variable(let name, _): names.insert(String(name.split(separator: ".").first ?? ""))
                case .section(let name, _, let children):
                    names.insert(String(name.split(separator: ".").first ?? ""))
                    collect(children, into: &names)
                }
            }
        }
        var names: Set<String> = []
        collect(nodes, into: &names)
        return names.subtracting(["."])
    }

    public func render(_ values: JSONObject, html: Bool) -> String {
        var output = ""
        Self.render(nodes, scopes: [.object(values)], html: html, into: &output)
        return output
    }

    private static func render(_ nodes: [Node], scopes: [JSONValue], html: Bool, into output: inout String) {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .variable(let name, let escaped):
                let text = string(lookup(name, in: scopes))
                output += escaped && html ? escape(text) : text
            case .section(let name, let inverted, let children):
                let value = lookup(name, in: scopes)
                if inverted {
                    if !truthy(value) { render(children, scopes: scopes, html: html, into: &output) }
                } else if case .array(let items) = value {
                    for item in items { render(children, scopes: scopes + [item], html: html, into: &output) }
                } else if truthy(value) {
                    render(children, scopes: scopes + [value ?? .null], html: html, into: &output)
                }
            }
        }
    }

    private static func lookup(_ name: String, in scopes: [JSONValue]) -> JSONValue? {
        if name == "." { return scopes.last }
        let parts = name.split(separator: ".").map(String.init)
        for scope in scopes.reversed() {
            guard case .object(let object) = scope, var value = object[parts[0]] else { continue }
            for part in parts.dropFirst() {
                guard case .object(let inner) = value, let next = inner[part] else { return nil }
                value = next
            }
            return value
        }
        return nil
    }

    private static func truthy(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?, .bool(false)?: false
        case .array(let items)?: !items.isEmpty
        case .string(let text)?: !text.isEmpty
        default: true
        }
    }

    private static func string(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: ""
        case .string(let text)?: text
        case .integer(let number)?: String(number)
        case .number(let number)?: number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .bool(let flag)?: flag ? "true" : "false"
        case let other?: String(decoding: other.encoded(), as: UTF8.self)
        }
    }

    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}

public enum MustacheError: Error, Equatable, Sendable, CustomStringConvertible {
    case unclosedTag
    case emptyTag
    case unbalancedSection(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .unclosedTag: "a '{{' is never closed"
        case .emptyTag: "an empty '{{}}' tag"
        case .unbalancedSection(let name): "section '\(name)' is not closed where it should be"
        case .unsupported(let sigil): "'{{\(sigil)' (partials and delimiter changes) is not supported"
        }
    }
}
