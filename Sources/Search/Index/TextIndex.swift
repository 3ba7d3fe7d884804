import Foundation
import Runtime

/// One index's documents and inverted lists, in memory. A document that changes gets a new
/// internal id and its old one becomes a hole that searches skip; the lists are rebuilt without
/// holes once there are more holes than documents. Not thread-safe: `SearchIndex` serializes.
final class TextIndex {
    /// One occurrence of a word: the document, the attribute's rank and the word's position in it.
    struct Posting {
        var document: Int32
        var attribute: UInt16
        var position: UInt16
    }

    /// A word of the vocabulary, as scalars for the typo automaton.
    struct Term {
        var text: String
        var scalars: [UInt32]
    }

    private(set) var settings: IndexSettings
    let primaryKey: String
    /// Documents as rows of values by field id: no keys or hash tables per document (100,000
    /// products fit in a few tens of megabytes). A deleted document's row is empty.
    private(set) var rows: [[JSONValue?]] = []
    private(set) var alive: [Bool] = []
    private(set) var fields: [String] = []
    private var fieldIDs: [String: Int] = [:]
    private var keys: [String] = []
    private var idByKey: [String: Int32] = [:]
    private(set) var postings: [String: [Posting]] = [:]
    /// Attribute name → rank (its place in `searchableAttributes`, or first seen with `*`).
    private(set) var attributeRanks: [String: UInt16] = [:]
    private(set) var attributeNames: [String] = []
    private var sortedTerms: [Term] = []
    private var termsChanged = false
    private(set) var fieldDistribution: [String: Int] = [:]
    private(set) var count = 0
    /// Postings added since the lists were last rebuilt (holes' included): the memory estimate.
    private(set) var postingCount = 0
    private var holes = 0
    private(set) var lastUpdate = Date()

    init(primaryKey: String, settings: IndexSettings) {
        self.primaryKey = primaryKey
        self.settings = settings
        if settings.searchableAttributes != ["*"] {
            for name in settings.searchableAttributes { rank(of: name) }
        }
    }

    /// The document's key as text (numbers without a fraction, as Meilisearch shows ids).
    static func key(of value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: return text
        case .integer(let number)?: return String(number)
        case .number(let number)? where number.rounded() == number && abs(number) < 1e15: return String(Int64(number))
        default: return nil
        }
    }

    func document(key: String) -> JSONObject? { idByKey[key].map(document) }

    /// About how many bytes the index holds: each row's values (24 bytes a slot, plus text over
    /// 15 bytes), each posting (8), each key twice; measured within ~15 % of RSS on 100,000
    /// generated products.
    var estimatedBytes: Int {
        rows.count * 48 + fields.count * count * 24 + postingCount * 8 + postings.count * 64 + count * 96
    }

    /// Slots of documents, holes included (the size of per-document scratch arrays).
    var capacity: Int { rows.count }

    /// A stored document as an object, its fields in the order they were first seen.
    func document(_ id: Int32) -> JSONObject {
        var object = JSONObject()
        for (field, value) in rows[Int(id)].enumerated() {
            if let value { object[fields[field]] = value }
        }
        return object
    }

    /// A top-level field of a stored document (nil: the document has no such field).
    @inline(__always)
    func field(_ id: Int32, _ name: String) -> JSONValue? {
        guard let field = fieldIDs[name] else { return nil }
        let row = rows[Int(id)]
        return field < row.count ? row[field] : nil
    }

    /// Live documents in storage order (`GET …/documents`).
    var liveIDs: [Int32] { alive.indices.filter { alive[$0] }.map { Int32($0) } }

    /// Adds or replaces documents by their primary key; documents without one are skipped (and
    /// counted in the answer).
    @discardableResult
    func upsert(_ batch: [JSONObject]) -> Int {
        var skipped = 0
        for document in batch {
            guard let key = Self.key(of: document[primaryKey]) else {
                skipped += 1
                continue
            }
            // A reconcile re-reads every row: an unchanged one keeps its id and postings.
            if let existing = idByKey[key], self.document(existing) == document { continue }
            removeDocument(key: key)
            add(document, key: key)
        }
        lastUpdate = Date()
        compactIfNeeded()
        return skipped
    }

    func delete(keys: [String]) {
        for key in keys { removeDocument(key: key) }
        lastUpdate = Date()
        compactIfNeeded()
    }

    /// Every key, for a reconcile to find documents the source no longer has.
    var allKeys: [String] { idByKey.keys.map { $0 } }

    /// New settings: the lists are rebuilt when what is searched changed.
    func replaceSettings(_ next: IndexSettings) {
        let rebuild = next.searchableAttributes != settings.searchableAttributes
        settings = next
        if rebuild { rebuildLists() }
    }

    private func removeDocument(key: String) {
        guard let id = idByKey.removeValue(forKey: key) else { return }
        for (field, value) in rows[Int(id)].enumerated() where value != nil { fieldDistribution[fields[field], default: 1] -= 1 }
        rows[Int(id)] = []
        alive[Int(id)] = false
        count -= 1
        holes += 1
    }

    private func add(_ document: JSONObject, key: String) {
        let id = Int32(rows.count)
        var row = [JSONValue?](repeating: nil, count: fields.count)
        for (name, value) in document {
            let field: Int
            if let known = fieldIDs[name] {
                field = known
            } else {
                field = fields.count
                fields.append(name)
                fieldIDs[name] = field
                row.append(nil)
            }
            row[field] = value
        }
        rows.append(row)
        alive.append(true)
        keys.append(key)
        idByKey[key] = id
        count += 1
        for name in document.keys { fieldDistribution[name, default: 0] += 1 }
        index(row, id: id)
    }

    @discardableResult
    private func rank(of attribute: String) -> UInt16 {
        if let known = attributeRanks[attribute] { return known }
        let rank = UInt16(min(attributeNames.count, Int(UInt16.max)))
        attributeRanks[attribute] = rank
        attributeNames.append(attribute)
        return rank
    }

    private func searchable(_ attribute: String) -> UInt16? {
        if settings.searchableAttributes == ["*"] { return rank(of: attribute) }
        if let known = attributeRanks[attribute] { return known }
        // A nested field of a listed attribute (`author.name` under `author`) is searched too.
        for (position, name) in settings.searchableAttributes.enumerated() where attribute.hasPrefix(name + ".") { return UInt16(position) }
        return nil
    }

    private func index(_ row: [JSONValue?], id: Int32) {
        for (field, value) in row.enumerated() {
            guard let value, let attribute = searchable(fields[field]) else { continue }
            var position = 0
            for text in TextNormalizer.texts(of: value) {
                for word in TextNormalizer.words(text) {
                    if postings[word] == nil { termsChanged = true }
                    postings[word, default: []].append(Posting(document: id, attribute: attribute, position: UInt16(min(position, 65_535))))
                    postingCount += 1
                    position += 1
                }
                // Array elements are apart: a phrase does not run from one into the next.
                position += 8
            }
        }
    }

    private func compactIfNeeded() {
        if holes > 1_000 && holes > count { rebuildLists() }
    }

    /// New ids without holes, and every list built again — from the stored rows, without
    /// turning documents back into objects (a settings change on 100,000 documents must not
    /// double the index's memory for a moment).
    private func rebuildLists() {
        let oldRows = rows
        let oldKeys = keys
        let oldAlive = alive
        rows = []
        keys = []
        alive = []
        idByKey = [:]
        postings = [:]
        postingCount = 0
        holes = 0
        attributeRanks = [:]
        attributeNames = []
        if settings.searchableAttributes != ["*"] {
            for name in settings.searchableAttributes { rank(of: name) }
        }
        termsChanged = true
        rows.reserveCapacity(count)
        for old in oldRows.indices where oldAlive[old] {
            let id = Int32(rows.count)
            rows.append(oldRows[old])
            keys.append(oldKeys[old])
            alive.append(true)
            idByKey[oldKeys[old]] = id
            index(oldRows[old], id: id)
        }
    }

    /// The vocabulary in order, sorted again only after new words came.
    var terms: [Term] {
        if termsChanged {
            sortedTerms = postings.keys.sorted().map { Term(text: $0, scalars: $0.unicodeScalars.map(\.value)) }
            termsChanged = false
        }
        return sortedTerms
    }

    /// Where the terms starting with `prefix` are in `terms`.
    func range(startingWith prefix: String, in terms: [Term]) -> Range<Int> {
        var low = 0
        var high = terms.count
        while low < high {
            let middle = (low + high) / 2
            if terms[middle].text < prefix { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < terms.count, terms[end].text.hasPrefix(prefix) { end += 1 }
        return low..<end
    }
}
