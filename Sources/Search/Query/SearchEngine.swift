import Foundation
import Runtime

/// Runs one search over an index: candidates from the inverted lists (or every document for an
/// empty query), the caller's rows and the filter applied before anything is counted, ranked by
/// the index's rules, then facets, pagination and the hits' formatting.
struct SearchEngine {
    /// One candidate and what ranks it.
    struct Candidate {
        var id: Int32
        var words = 0
        var typos = 0
        var proximity = 0
        var attribute = Int(UInt16.max)
        var position = Int(UInt16.max)
        var exact = 0
    }

    /// Per document, per query word: the best hit.
    private struct WordHit {
        var typos: UInt8
        var exact: Bool
        var attribute: UInt16
        var position: UInt16
    }

    let index: TextIndex
    let query: SearchQuery
    let view: SearchView

    func run() throws(SearchError) -> JSONObject {
        let started = ContinuousClock.now
        try checkAttributes()
        let terms = QueryTerms(query: query.q ?? "", index: index)
        let allowed = allowedRanks()
        var candidates = terms.words.isEmpty ? everyDocument() : matching(terms, allowed: allowed)
        // Rows the caller may not see and rows the filter drops go before anything is counted.
        if view.rows != nil || query.filter != nil {
            let rows = view.rows
            let filter = query.filter
            candidates.removeAll { candidate in
                let field: (String) -> JSONValue? = { index.field(candidate.id, $0) }
                if let rows, !rows(field) { return true }
                if let filter, !filter.matches(field) { return true }
                return false
            }
        }
        var response = JSONObject()
        response["hits"] = .array([])
        response["query"] = .string(query.q ?? "")
        let facets = query.facets.isEmpty ? nil : facetDistribution(candidates)
        let total: Int
        let window: Range<Int>
        let maxTotalHits = index.settings.maxTotalHits
        if let distinct = query.distinct ?? index.settings.distinctAttribute {
            // One document per value: ranked in full, then thinned.
            candidates = rank(candidates, wordCount: terms.words.count, keep: candidates.count)
            var seen = Set<String>()
            candidates = candidates.filter { candidate in
                guard let value = FilterExpression.lookup(distinct, { index.field(candidate.id, $0) }) else { return true }
                return seen.insert(String(decoding: value.encoded(), as: UTF8.self)).inserted
            }
            total = candidates.count
            window = query.window(total: total, maxTotalHits: maxTotalHits)
        } else {
            total = candidates.count
            window = query.window(total: total, maxTotalHits: maxTotalHits)
            // Only the page's documents need their order: the best `upperBound` are selected.
            candidates = rank(candidates, wordCount: terms.words.count, keep: window.upperBound)
        }
        for (name, value) in query.pagingFields(total: total, maxTotalHits: maxTotalHits) { response[name] = value }
        let formatter = HitFormatter(index: index, query: query, view: view, highlighted: terms.highlighted)
        let shown = window.clamped(to: 0..<candidates.count)
        response["hits"] = .array(candidates[shown].map { candidate in
            var hit = formatter.format(index.document(candidate.id))
            if query.showRankingScore { hit["_rankingScore"] = .number(score(candidate, wordCount: terms.words.count)) }
            return .object(hit)
        })
        if let facets {
            response["facetDistribution"] = .object(facets.distribution)
            response["facetStats"] = .object(facets.stats)
        }
        response["processingTimeMs"] = .integer(Int64(Supervisor.milliseconds(ContinuousClock.now - started)))
        return response
    }

    /// Hidden columns first (403: the caller may not know they exist), then what the settings
    /// allow for each use.
    private func checkAttributes() throws(SearchError) {
        for name in query.namedAttributes where !view.allows(name) { throw SearchError.hiddenAttribute(name) }
        let settings = index.settings
        func listed(_ name: String, in list: [String]) -> Bool {
            list.contains("*") || list.contains(name) || list.contains { name.hasPrefix($0 + ".") }
        }
        let filterable = settings.filterableAttributes
        for name in query.filter?.attributes ?? [] where !listed(name, in: filterable) {
            throw SearchError.badFilter(
                "Attribute `\(name)` is not filterable. Available filterable attributes are: `\(filterable.sorted().joined(separator: ", "))`.")
        }
        for name in query.facets where !listed(name, in: filterable) {
            throw SearchError.badRequest(
                "invalid_search_facets", "Invalid facet distribution, attribute `\(name)` is not filterable. The available filterable attributes are `\(filterable.sorted().joined(separator: ", "))`.")
        }
        if let distinct = query.distinct, !listed(distinct, in: filterable) {
            throw SearchError.badRequest("invalid_search_distinct", "Attribute `\(distinct)` is not filterable and thus, cannot be used as distinct attribute.")
        }
        for rule in query.sort where !listed(rule.attribute, in: settings.sortableAttributes) {
            throw SearchError.badSort(
                "Attribute `\(rule.attribute)` is not sortable. Available sortable attributes are: `\(settings.sortableAttributes.sorted().joined(separator: ", "))`.")
        }
        if let on = query.attributesToSearchOn, settings.searchableAttributes != ["*"] {
            for name in on where !listed(name, in: settings.searchableAttributes) {
                throw SearchError.badRequest(
                    "invalid_search_attributes_to_search_on", "Attribute `\(name)` is not searchable. Available searchable attributes are: `\(settings.searchableAttributes.joined(separator: ", "))`.")
            }
        }
    }

    /// The attribute ranks a query word may match in: the readable ones, narrowed by
    /// `attributesToSearchOn`. nil: all.
    private func allowedRanks() -> Set<UInt16>? {
        guard view.columns != nil || query.attributesToSearchOn != nil else { return nil }
        var ranks = Set<UInt16>()
        for (name, rank) in index.attributeRanks where view.allows(name) {
            if let on = query.attributesToSearchOn, !on.contains(name) && !on.contains(where: { name.hasPrefix($0 + ".") }) { continue }
            ranks.insert(rank)
        }
        return ranks
    }

    private func everyDocument() -> [Candidate] {
        var result: [Candidate] = []
        result.reserveCapacity(index.count)
        for (id, alive) in index.alive.enumerated() where alive { result.append(Candidate(id: Int32(id))) }
        return result
    }

    /// Documents matching the query's words, each with what ranks it. Per-document scratch is
    /// a dense array over the index's slots (no hashing per posting), reused word after word.
    private func matching(_ terms: QueryTerms, allowed: Set<UInt16>?) -> [Candidate] {
        let wordCount = terms.words.count
        let none = WordHit(typos: .max, exact: false, attribute: .max, position: .max)
        var slotOf = [Int32](repeating: -1, count: index.capacity)
        var owners: [Int32] = []
        var hits: [WordHit] = []
        let alive = index.alive
        for (word, matches) in terms.matches.enumerated() {
            for (term, match) in matches {
                guard let postings = index.postings[term] else { continue }
                for posting in postings {
                    let document = Int(posting.document)
                    guard alive[document] else { continue }
                    if let allowed, !allowed.contains(posting.attribute) { continue }
                    var slot = Int(slotOf[document])
                    if slot < 0 {
                        slot = owners.count
                        slotOf[document] = Int32(slot)
                        owners.append(posting.document)
                        hits.append(contentsOf: repeatElement(none, count: wordCount))
                    }
                    let at = slot * wordCount + word
                    let best = hits[at]
                    // Fewer typos first, then the better attribute, then the earlier position.
                    if best.typos == .max || (match.typos, posting.attribute, posting.position) < (best.typos, best.attribute, best.position) {
                        hits[at] = WordHit(typos: match.typos, exact: match.exact, attribute: posting.attribute, position: posting.position)
                    }
                }
            }
        }
        var result: [Candidate] = []
        result.reserveCapacity(owners.count)
        for (slot, id) in owners.enumerated() {
            let base = slot * wordCount
            var candidate = Candidate(id: id)
            var leading = 0
            while leading < wordCount, hits[base + leading].typos != .max { leading += 1 }
            var matched = 0
            for word in 0..<wordCount where hits[base + word].typos != .max { matched += 1 }
            switch query.matchingStrategy {
            case .all:
                guard matched == wordCount else { continue }
                candidate.words = matched
            case .last:
                guard leading > 0 else { continue }
                candidate.words = leading
            case .frequency:
                candidate.words = matched
            }
            var previous: WordHit?
            for word in 0..<wordCount {
                let hit = hits[base + word]
                guard hit.typos != .max else {
                    previous = nil
                    continue
                }
                candidate.typos += Int(hit.typos)
                if hit.exact { candidate.exact += 1 }
                if Int(hit.attribute) < candidate.attribute || (Int(hit.attribute) == candidate.attribute && Int(hit.position) < candidate.position) {
                    candidate.attribute = Int(hit.attribute)
                    candidate.position = Int(hit.position)
                }
                // Neighbouring words in the same attribute: their distance (at most 7); in
                // different attributes, the most.
                if let previous {
                    candidate.proximity += previous.attribute == hit.attribute ? min(abs(Int(hit.position) - Int(previous.position)), 7) : 8
                }
                previous = hit
            }
            result.append(candidate)
        }
        return result
    }

    /// One step of the ranking: a rule on what matched, or a document value's order.
    private enum RankStep {
        case words, typo, proximity, attribute, position, exactness
        case value(attribute: String, ascending: Bool)

        /// Bits in a packed key, and the candidate's number there (lower ranks first).
        func packed(_ candidate: Candidate) -> (bits: Int, value: UInt64) {
            switch self {
            case .words: return (4, UInt64(15 - min(candidate.words, 15)))
            case .typo: return (5, UInt64(min(candidate.typos, 31)))
            case .proximity: return (7, UInt64(min(candidate.proximity, 127)))
            case .attribute: return (10, UInt64(min(candidate.attribute, 1023)))
            case .position: return (16, UInt64(min(candidate.position, 65_535)))
            case .exactness: return (4, UInt64(15 - min(candidate.exact, 15)))
            case .value: return (0, 0)
            }
        }
    }

    private func steps(wordCount: Int) -> [RankStep] {
        var steps: [RankStep] = []
        for rule in index.settings.rankingRules {
            switch rule {
            case "words" where wordCount > 0: steps.append(.words)
            case "typo" where wordCount > 0: steps.append(.typo)
            case "proximity" where wordCount > 1: steps.append(.proximity)
            case "attribute" where wordCount > 0: steps += [.attribute, .position]
            case "attributeRank" where wordCount > 0: steps.append(.attribute)
            case "wordPosition" where wordCount > 0: steps.append(.position)
            case "exactness" where wordCount > 0: steps.append(.exactness)
            case "sort": steps += query.sort.map { .value(attribute: $0.attribute, ascending: $0.ascending) }
            default:
                if let custom = IndexSettings.customRule(rule) { steps.append(.value(attribute: custom.attribute, ascending: custom.ascending)) }
            }
        }
        return steps
    }

    /// The best `keep` candidates in order (ties: insertion order, as Meilisearch's internal ids).
    /// Rules on what matched pack into one integer per candidate, so the common case compares
    /// integers; document values (sort, custom rules) are read once per candidate.
    private func rank(_ candidates: [Candidate], wordCount: Int, keep: Int) -> [Candidate] {
        guard keep > 0, !candidates.isEmpty else { return [] }
        let steps = steps(wordCount: wordCount)
        let valueSteps = steps.enumerated().compactMap { position, step -> (Int, String, Bool)? in
            if case .value(let attribute, let ascending) = step { return (position, attribute, ascending) }
            return nil
        }
        let packedBits = steps.reduce(0) { $0 + $1.packed(Candidate(id: 0)).bits }
        if valueSteps.isEmpty, packedBits <= 64 {
            var keyed = candidates.indices.map { position -> (key: UInt64, id: Int32, position: Int) in
                var key: UInt64 = 0
                for step in steps {
                    let (bits, value) = step.packed(candidates[position])
                    key = key << UInt64(bits) | value
                }
                return (key, candidates[position].id, position)
            }
            let best = TopK.select(&keyed, keep: keep) { ($0.key, $0.id) < ($1.key, $1.id) }
            return best.map { candidates[$0.position] }
        }
        // Document values in their rule's place: each candidate's values read once.
        let values: [[JSONValue?]] = candidates.map { candidate in
            valueSteps.map { step in FilterExpression.lookup(step.1, { index.field(candidate.id, $0) }) }
        }
        var order = Array(candidates.indices)
        let best = TopK.select(&order, keep: keep) { left, right in
            var valueIndex = 0
            for step in steps {
                if case .value(_, let ascending) = step {
                    let result = SortOrder.compare(values[left][valueIndex], values[right][valueIndex], ascending: ascending)
                    valueIndex += 1
                    if result != .orderedSame { return result == .orderedAscending }
                } else {
                    let a = step.packed(candidates[left]).value
                    let b = step.packed(candidates[right]).value
                    if a != b { return a < b }
                }
            }
            return candidates[left].id < candidates[right].id
        }
        return best.map { candidates[$0] }
    }

    /// A relevancy between 0 and 1: the rules' scores, the first weighing most.
    private func score(_ candidate: Candidate, wordCount: Int) -> Double {
        guard wordCount > 0 else { return 1 }
        let words = Double(candidate.words) / Double(wordCount)
        let typos = 1 - Double(candidate.typos) / Double(wordCount * 2 + 1)
        let proximity = wordCount > 1 ? 1 - Double(candidate.proximity) / Double(8 * (wordCount - 1) + 1) : 1
        let attributes = max(index.attributeNames.count, 1)
        let attribute = 1 - Double(min(candidate.attribute, attributes)) / Double(attributes + 1)
        let exactness = Double(candidate.exact) / Double(wordCount)
        let parts = [words, typos, proximity, attribute, exactness]
        var total = 0.0
        var weight = 1.0
        var weights = 0.0
        for part in parts {
            total += part * weight
            weights += weight
            weight /= 4
        }
        return (total / weights * 10_000).rounded() / 10_000
    }

    private func facetDistribution(_ candidates: [Candidate]) -> (distribution: JSONObject, stats: JSONObject) {
        var distribution = JSONObject()
        var stats = JSONObject()
        for facet in query.facets {
            var counts: [String: Int] = [:]
            var low = Double.infinity
            var high = -Double.infinity
            for candidate in candidates {
                var seen = Set<String>()
                for value in FilterExpression.values(at: facet, { index.field(candidate.id, $0) }) {
                    let label: String
                    switch value {
                    case .string(let text): label = text
                    case .integer(let number):
                        label = String(number)
                        low = min(low, Double(number))
                        high = max(high, Double(number))
                    case .number(let number):
                        label = number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
                        low = min(low, number)
                        high = max(high, number)
                    case .bool(let flag): label = flag ? "true" : "false"
                    default: continue
                    }
                    if seen.insert(label).inserted { counts[label, default: 0] += 1 }
                }
            }
            var values = JSONObject()
            for (label, count) in counts.sorted(by: { $0.key < $1.key }).prefix(index.settings.maxValuesPerFacet) {
                values[label] = .integer(Int64(count))
            }
            distribution[facet] = .object(values)
            if low <= high { stats[facet] = ["min": .number(low), "max": .number(high)] }
        }
        return (distribution, stats)
    }
}

/// Meilisearch's sort order: numbers before strings, each in order; documents without the
/// value last whichever the direction.
enum SortOrder {
    static func compare(_ left: JSONValue?, _ right: JSONValue?, ascending: Bool) -> ComparisonResult {
        func rank(_ value: JSONValue?) -> Int {
            switch value {
            case .integer?, .number?: return 0
            case .string?: return 1
            case .bool?: return 2
            default: return 3
            }
        }
        let (a, b) = (rank(left), rank(right))
        if a != b { return a < b ? .orderedAscending : .orderedDescending }
        var result = ComparisonResult.orderedSame
        switch (left, right) {
        case (let x?, let y?) where a == 0:
            let (p, q) = (x.doubleValue ?? 0, y.doubleValue ?? 0)
            result = p < q ? .orderedAscending : p > q ? .orderedDescending : .orderedSame
        case (.string(let x)?, .string(let y)?):
            let (p, q) = (TextNormalizer.fold(x), TextNormalizer.fold(y))
            result = p < q ? .orderedAscending : p > q ? .orderedDescending : .orderedSame
        case (.bool(let x)?, .bool(let y)?):
            result = x == y ? .orderedSame : (!x ? .orderedAscending : .orderedDescending)
        default: return .orderedSame
        }
        if ascending { return result }
        return result == .orderedAscending ? .orderedDescending : result == .orderedDescending ? .orderedAscending : .orderedSame
    }
}

/// The `keep` smallest elements in order: a full sort when most are kept, else a bounded max-heap
/// (a page of 20 out of 100,000 candidates costs n·log 20 comparisons, not n·log n).
enum TopK {
    static func select<T>(_ items: inout [T], keep: Int, by less: (T, T) -> Bool) -> [T] {
        if keep >= items.count / 4 {
            items.sort(by: less)
            return Array(items.prefix(keep))
        }
        var heap: [T] = []
        heap.reserveCapacity(keep + 1)
        func siftUp(_ start: Int) {
            var child = start
            while child > 0 {
                let parent = (child - 1) / 2
                guard less(heap[parent], heap[child]) else { return }
                heap.swapAt(parent, child)
                child = parent
            }
        }
        func siftDown() {
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < heap.count else { return }
                var largest = left
                if left + 1 < heap.count, less(heap[left], heap[left + 1]) { largest = left + 1 }
                guard less(heap[parent], heap[largest]) else { return }
                heap.swapAt(parent, largest)
                parent = largest
            }
        }
        for item in items {
            if heap.count < keep {
                heap.append(item)
                siftUp(heap.count - 1)
            } else if less(item, heap[0]) {
                heap[0] = item
                siftDown()
            }
        }
        heap.sort(by: less)
        return heap
    }
}
