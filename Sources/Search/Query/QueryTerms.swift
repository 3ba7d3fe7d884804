/// What each query word matches in an index's vocabulary: the word itself, longer words it
/// starts (the last word only, while it is still being typed), words within the typo budget, and
/// its synonyms — each with its typo count.
struct QueryTerms {
    struct Match {
        var typos: UInt8
        /// Matched as typed, not as a prefix or with typos.
        var exact: Bool
        /// For highlighting a prefix match: how many scalars of the word matched.
        var prefixLength: Int?
    }

    /// The query's words after stop words were dropped (at most ten, as Meilisearch reads).
    let words: [String]
    /// Per word, the vocabulary's words it matches.
    let matches: [[String: Match]]

    static let maxWords = 10
    /// A one-letter prefix may start thousands of words; the most frequent ones are enough.
    static let maxExpansions = 2_000

    init(query: String, index: TextIndex) {
        let settings = index.settings
        var words = TextNormalizer.words(query, limit: Self.maxWords)
        let typing = query.unicodeScalars.last.map(TextNormalizer.isWordScalar) ?? false
        if !settings.stopWords.isEmpty {
            let kept = words.enumerated().filter { !settings.stopWords.contains($0.element) || ($0.offset == words.count - 1 && typing) }.map(\.element)
            if !kept.isEmpty { words = kept }
        }
        self.words = words
        let terms = words.isEmpty ? [] : index.terms
        var distance = TypoDistance()
        var all: [[String: Match]] = []
        for (position, word) in words.enumerated() {
            let prefix = typing && position == words.count - 1
            var found: [String: Match] = [:]
            if index.postings[word] != nil { found[word] = Match(typos: 0, exact: true) }
            if prefix {
                for term in terms[index.range(startingWith: word, in: terms)].prefix(Self.maxExpansions) where term.text != word {
                    found[term.text] = Match(typos: 0, exact: false, prefixLength: word.unicodeScalars.count)
                }
            }
            let budget = Self.typoBudget(word, settings: settings)
            if budget > 0 {
                let scalars = word.unicodeScalars.map(\.value)
                // With one typo allowed the first letter must be right (a first-letter typo counts
                // two), so only the words starting with it are read.
                let candidates = budget == 1 ? index.range(startingWith: String(word.unicodeScalars.first!), in: terms) : 0..<terms.count
                var expansions = 0
                for term in terms[candidates] where found[term.text] == nil {
                    guard var typos = distance.distance(scalars, term.scalars, limit: budget, prefix: prefix) else { continue }
                    if term.scalars.first != scalars.first { typos += 1 }
                    guard typos > 0, typos <= budget else { continue }
                    found[term.text] = Match(typos: UInt8(typos), exact: false, prefixLength: prefix ? nil : nil)
                    expansions += 1
                    if expansions >= Self.maxExpansions { break }
                }
            }
            for (key, alternatives) in settings.synonyms where TextNormalizer.fold(key) == word {
                for alternative in alternatives {
                    for synonym in TextNormalizer.words(alternative) where index.postings[synonym] != nil && found[synonym] == nil {
                        found[synonym] = Match(typos: 0, exact: false)
                    }
                }
            }
            all.append(found)
        }
        self.matches = all
    }

    /// 0, 1 or 2 typos by the word's length and the index's typo settings.
    static func typoBudget(_ word: String, settings: IndexSettings) -> Int {
        let typo = settings.typoTolerance
        guard typo.enabled, !typo.disableOnWords.contains(word) else { return 0 }
        if typo.disableOnNumbers, word.unicodeScalars.allSatisfy({ $0.properties.numericType != nil }) { return 0 }
        let length = word.unicodeScalars.count
        return length >= typo.twoTypos ? 2 : length >= typo.oneTypo ? 1 : 0
    }

    /// Every matched word with how much of it to highlight (nil: all of it).
    var highlighted: [String: Int?] {
        var result: [String: Int?] = [:]
        for word in matches {
            for (term, match) in word {
                if let existing = result[term], existing == nil { continue }
                result[term] = match.prefixLength
            }
        }
        return result
    }
}
