import Runtime

/// `select` lists already parsed, by their text. Clients send the same few shapes over and over,
/// and parsing one with embeds is the costliest step of planning a read: a two-level embed's took
/// ~40 µs, a third of the node's CPU for the whole request (perf, `Benchmarks/rest`). Parsing is a
/// pure function of the text, so a kept result is the same answer; errors are never kept, so a bad
/// select is refused with its own message every time.
///
/// Only ASCII texts are kept: `String` equality is canonical equivalence, while the parser reads
/// some separators (`->`, `::`) by bytes, so two texts equal as strings could parse differently
/// (`a-≯b` and `a->` + U+0338 + `b`); ASCII texts are equal only when their bytes are.
///
/// Bounded: texts longer than `maxKeyBytes` are parsed and not kept, and a full cache is emptied
/// before it takes a new entry (a client cycling through more shapes than fit pays the parse, as
/// without the cache).
final class ParsedSelectCache: @unchecked Sendable {
    private let capacity: Int
    private let maxKeyBytes: Int
    private let lock = Lock()
    private var entries: [String: [SelectItem]] = [:]

    init(capacity: Int = 1024, maxKeyBytes: Int = 1024) {
        self.capacity = capacity
        self.maxKeyBytes = maxKeyBytes
    }

    /// The parse of `text`, from the cache or from `parse` (whose result is then kept).
    func items(for text: String, parse: (String) throws(RestError) -> [SelectItem]) throws(RestError) -> [SelectItem] {
        guard text.utf8.count <= maxKeyBytes, text.utf8.allSatisfy({ $0 < 0x80 }) else { return try parse(text) }
        if let kept = lock.withLock({ entries[text] }) { return kept }
        let parsed = try parse(text)
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[text] = parsed
        }
        return parsed
    }

    var count: Int { lock.withLock { entries.count } }
}
