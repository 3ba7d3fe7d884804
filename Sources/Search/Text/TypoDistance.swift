/// Damerau-Levenshtein distance in its restricted form (a transposition of two neighbours counts
/// one typo, as Meilisearch counts it), bounded: the computation gives up as soon as every cell
/// of a row exceeds `limit`, so scanning a vocabulary costs little for words far away.
public struct TypoDistance {
    private var previous2: [Int] = []
    private var previous: [Int] = []
    private var current: [Int] = []

    public init() {}

    /// The distance from `query` to `word`, or nil when it exceeds `limit`. With `prefix`, the
    /// distance to the closest prefix of `word` (the last query word is still being typed).
    public mutating func distance(_ query: [UInt32], _ word: [UInt32], limit: Int, prefix: Bool) -> Int? {
        let n = query.count
        let m = word.count
        if !prefix && abs(n - m) > limit { return nil }
        if prefix && m + limit < n { return nil }
        // Rows over the query, columns over the word: cell [j] is the distance between
        // query[0..<i] and word[0..<j].
        if previous.count < m + 1 {
            previous2 = [Int](repeating: 0, count: m + 1)
            previous = previous2
            current = previous2
        }
        for j in 0...m { previous[j] = j }
        var best = prefix ? n : Int.max
        for i in 1...max(n, 1) where n > 0 {
            current[0] = i
            var rowMinimum = i
            for j in stride(from: 1, through: m, by: 1) {
                let cost = query[i - 1] == word[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, query[i - 1] == word[j - 2], query[i - 2] == word[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
                rowMinimum = min(rowMinimum, value)
            }
            if rowMinimum > limit { return nil }
            swap(&previous2, &previous)
            swap(&previous, &current)
        }
        if n == 0 { return 0 }
        if prefix {
            for j in 0...m { best = min(best, previous[j]) }
        } else {
            best = previous[m]
        }
        return best <= limit ? best : nil
    }
}
