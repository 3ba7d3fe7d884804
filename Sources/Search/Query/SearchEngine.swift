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
        candidates = candidates.filter { candidate in
            guard let document = index.documents[Int(candidate.id)] else { return false }
            if let rows = view.rows, !rows(document) { return false }
            if let filter = query.filter, !filter.matches(document) { return false }
            return true
        }
        var response = JSONObject()
        response["hits"] = .array([])
        response["query"] = .string(query.q ?? "")
        let facets = query.facets.isEmpty ? nil : facetDistribution(candidates)
        rank(&candidates, wordCount: terms.words.count)
        if let distinct = query.distinct ?? index.settings.distinctAttribute {
            var seen = Set<String>()
            candidates = candidates.filter { candidate in
                guard let value = index.documents[Int(candidate.id)].flatMap({ FilterExpression.lookup(distinct, in: $0) }) else { return true }
                return seen.insert(String(decoding: value.encoded(), as: UTF8.self)).inserted
            }
        }
        let total = candidates.count
        let capped = min(total, index.settings.maxTotalHits)
        let window: Range<Int>
        if query.page != nil || query.hitsPerPage != nil {
            let perPage = query.hitsPerPage ?? 20
            let page = max(query.page ?? 1, 1)
            let start = min((page - 1) * perPage, capped)
            window = query.page == 0 ? 0..<0 : start..<min(start + perPage, capped)
            response["hitsPerPage"] = .integer(Int64(perPage))
            response["page"] = .integer(Int64(query.page ?? 1))
            response["totalPages"] = .integer(perPage == 0 ? 0 : Int64((capped + perPage - 1) / perPage))
            response["totalHits"] = .integer(Int64(capped))
        } else {
            let start = min(query.offset, capped)
            window = start..<min(start + query.limit, capped)
            response["limit"] = .integer(Int64(query.limit))
            response["offset"] = .integer(Int64(query.offset))
            response["estimatedTotalHits"] = .integer(Int64(capped))
        }
        let formatter = HitFormatter(index: index, query: query, view: view, highlighted: terms.highlighted)
        response["hits"] = .array(candidates[window].map { candidate in
            var hit = formatter.format(index.documents[Int(candidate.id)] ?? [:])
            if query.showRankingScore { hit["_rankingScore"] = .number(score(candidate, wordCount: terms.words.count)) }
            return .object(hit)
        })
        if let facets {
            response["facetDistribution"] = .object(facets.distribution)
            response["facetStats"] = .object(facets.stats)
        }
        let elapsed = ContinuousClock.now - started
        response["processingTimeMs"] = .integer(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
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
        for (id, document) in index.documents.enumerated() where document != nil { result.append(Candidate(id: Int32(id))) }
        return result
    }

    private func matching(_ terms: QueryTerms, allowed: Set<UInt16>?) -> [Candidate] {
        let wordCount = terms.words.count
        var hits: [Int32: [WordHit?]] = [:]
        for (word, matches) in terms.matches.enumerated() {
            for (term, match) in matches {
                for posting in index.postings[term] ?? [] {
                    if let allowed, !allowed.contains(posting.attribute) { continue }
                    let hit = WordHit(typos: match.typos, exact: match.exact, attribute: posting.attribute, position: posting.position)
                    // Changed in place: copying each document's slots per posting would cost more
                    // than the search.
                    if hits[posting.document] == nil { hits[posting.document] = [WordHit?](repeating: nil, count: wordCount) }
                    if let best = hits[posting.document]![word] {
                        // Fewer typos first, then the better attribute, then the earlier position.
                        if (hit.typos, hit.attribute, hit.position) < (best.typos, best.attribute, best.position) {
                            hits[posting.document]![word] = hit
                        }
                    } else {
                        hits[posting.document]![word] = hit
                    }
                }
            }
        }
        var result: [Candidate] = []
        result.reserveCapacity(hits.count)
        for (id, slots) in hits {
            var candidate = Candidate(id: id)
            var leading = 0
            while leading < wordCount, slots[leading] != nil { leading += 1 }
            let matched = slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
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
            for slot in slots {
                guard let hit = slot else {
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
                    candidate.proximity += previous.attribute == hit.attribute
                        ? min(abs(Int(hit.position) - Int(previous.position)), 7) : 8
                }
                previous = hit
            }
            result.append(candidate)
        }
        return result
    }

    private func rank(_ candidates: inout [Candidate], wordCount: Int) {
        var rules: [(Candidate, Candidate) -> ComparisonResult] = []
        func by(_ key: @escaping (Candidate) -> Int) -> (Candidate, Candidate) -> ComparisonResult {
            { left, right in
                let a = key(left)
                let b = key(right)
                return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
            }
        }
        let documents = index.documents
        func byValue(_ attribute: String, ascending: Bool) -> (Candidate, Candidate) -> ComparisonResult {
            { left, right in
                let a = documents[Int(left.id)].flatMap { FilterExpression.lookup(attribute, in: $0) }
                let b = documents[Int(right.id)].flatMap { FilterExpression.lookup(attribute, in: $0) }
                return SortOrder.compare(a, b, ascending: ascending)
            }
        }
        for rule in index.settings.rankingRules {
            switch rule {
            case "words" where wordCount > 0: rules.append(by { -$0.words })
            case "typo" where wordCount > 0: rules.append(by { $0.typos })
            case "proximity" where wordCount > 1: rules.append(by { $0.proximity })
            case "attribute" where wordCount > 0:
                rules.append(by { $0.attribute })
                rules.append(by { $0.position })
            case "attributeRank" where wordCount > 0: rules.append(by { $0.attribute })
            case "wordPosition" where wordCount > 0: rules.append(by { $0.position })
            case "exactness" where wordCount > 0: rules.append(by { -$0.exact })
            case "sort":
                for criterion in query.sort { rules.append(byValue(criterion.attribute, ascending: criterion.ascending)) }
            default:
                if let custom = IndexSettings.customRule(rule) { rules.append(byValue(custom.attribute, ascending: custom.ascending)) }
            }
        }
        // The document's insertion order breaks ties, as Meilisearch's internal ids do.
        rules.append(by { Int($0.id) })
        candidates.sort { left, right in
            for rule in rules {
                switch rule(left, right) {
                case .orderedAscending: return true
                case .orderedDescending: return false
                case .orderedSame: continue
                }
            }
            return false
        }
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
                guard let document = index.documents[Int(candidate.id)] else { continue }
                var seen = Set<String>()
                for value in FilterExpression.values(at: facet, in: document) {
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
