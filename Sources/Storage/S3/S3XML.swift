import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// S3's XML: answers are written as text (small, fixed shapes); the two request bodies S3 has
/// (DeleteObjects, CompleteMultipartUpload) are read with Foundation's parser, bounded in size by
/// the caller.
public enum S3XML {
    public static let declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    public static let namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// `<name>value</name>` with the value escaped.
    public static func element(_ name: String, _ value: String) -> String { "<\(name)>\(escape(value))</\(name)>" }

    /// S3's timestamps: ISO 8601 with milliseconds.
    public static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// The keys of a `<Delete>` body, and whether it asked for a quiet answer.
    public static func deleteRequest(_ data: [UInt8]) throws(S3Error) -> (keys: [String], quiet: Bool) {
        let tree = try parse(data)
        guard tree.name == "Delete" else { throw .malformedXML() }
        let keys = tree.children.filter { $0.name == "Object" }.compactMap { $0.child("Key")?.text }
        guard !keys.isEmpty, keys.count <= 1000 else { throw .malformedXML() }
        return (keys, tree.child("Quiet")?.text.lowercased() == "true")
    }

    /// The parts of a `<CompleteMultipartUpload>` body, in the order given.
    public static func completeRequest(_ data: [UInt8]) throws(S3Error) -> [(number: Int, etag: String)] {
        let tree = try parse(data)
        guard tree.name == "CompleteMultipartUpload" else { throw .malformedXML() }
        var parts: [(Int, String)] = []
        for part in tree.children where part.name == "Part" {
            guard let numberText = part.child("PartNumber")?.text, let number = Int(numberText.trimmingCharacters(in: .whitespaces)),
                let etag = part.child("ETag")?.text
            else { throw .malformedXML() }
            parts.append((number, etag.trimmingCharacters(in: .whitespaces)))
        }
        guard !parts.isEmpty else { throw .malformedXML() }
        return parts
    }

    /// A ListObjectsV2 answer (from an S3 backend): its keys with their times, and the next token.
    static func listPage(_ data: [UInt8]) throws(S3Error) -> (objects: [(String, Date)], nextToken: String?) {
        let tree = try parse(data)
        let objects: [(String, Date)] = tree.children.filter { $0.name == "Contents" }.compactMap { entry in
            guard let key = entry.child("Key")?.text else { return nil }
            let modified = entry.child("LastModified").flatMap { try? Date($0.text, strategy: .iso8601) } ?? Date.distantFuture
            return (key, modified)
        }
        let truncated = tree.child("IsTruncated")?.text == "true"
        return (objects, truncated ? tree.child("NextContinuationToken")?.text : nil)
    }

    final class Node {
        let name: String
        var text = ""
        var children: [Node] = []
        init(name: String) { self.name = name }
        func child(_ name: String) -> Node? { children.first { $0.name == name } }
    }

    static func parse(_ data: [UInt8]) throws(S3Error) -> Node {
        let delegate = TreeBuilder()
        let parser = XMLParser(data: Data(data))
        parser.shouldResolveExternalEntities = false
        parser.delegate = delegate
        guard parser.parse(), let root = delegate.root else { throw .malformedXML() }
        return root
    }

    final class TreeBuilder: NSObject, XMLParserDelegate {
        var root: Node?
        var stack: [Node] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let node = Node(name: name)
            if let parent = stack.last { parent.children.append(node) } else { root = node }
            stack.append(node)
            // Nesting this deep is no S3 request.
            if stack.count > 8 { parser.abortParsing() }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            _ = stack.popLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }
    }
}
