import Runtime
import Yams

/// A JSON or YAML document (OpenAPI and JSON Schema come in both), read into `JSONValue`. YAML's
/// anchors may be reused without bound, so the conversion counts nodes: a document that expands
/// beyond `maxNodes` (the "billion laughs") is refused rather than unfolded.
enum StructuredDocument {
    static let maxNodes = 2_000_000

    struct Failure: Error {
        var message: String
    }

    static func parse(_ text: String) throws(Failure) -> JSONValue {
        let first = text.utf8.first { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            do {
                return try JSONValue.parse(Array(text.utf8))
            } catch {
                throw Failure(message: "not valid JSON: \(error)")
            }
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw Failure(message: "neither JSON nor valid YAML: \(error)")
        }
        guard let node else { throw Failure(message: "the document is empty") }
        var budget = maxNodes
        return try json(node, budget: &budget, depth: 0)
    }

    private static func json(_ node: Node, budget: inout Int, depth: Int) throws(Failure) -> JSONValue {
        budget -= 1
        guard budget > 0 else { throw Failure(message: "the YAML document expands to more than \(maxNodes) nodes") }
        guard depth < 256 else { throw Failure(message: "the YAML document nests deeper than 256 levels") }
        switch node {
        case .scalar(let scalar):
            switch node.tag.description {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .integer(Int64($0)) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { throw Failure(message: "a mapping key is not a scalar") }
                object[name] = try json(value, budget: &budget, depth: depth + 1)
            }
            return .object(object)
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for item in sequence { items.append(try json(item, budget: &budget, depth: depth + 1)) }
            return .array(items)
        }
    }
}
