import Runtime

/// Shapes one hit: the displayed, readable and requested attributes, and `_formatted` with the
/// matched words highlighted and long texts cropped around the first match.
struct HitFormatter {
    let index: TextIndex
    let query: SearchQuery
    let view: SearchView
    /// Matched vocabulary words, with how many scalars to mark for a prefix match.
    let highlighted: [String: Int?]

    func format(_ document: JSONObject) -> JSONObject {
        let displayed = index.settings.displayedAttributes
        let requested = query.attributesToRetrieve ?? ["*"]
        func shown(_ name: String) -> Bool {
            view.allows(name) && (displayed.contains("*") || displayed.contains(name)) && (requested.contains("*") || requested.contains(name))
        }
        var hit = JSONObject()
        for (name, value) in document where shown(name) { hit[name] = value }
        let highlights = Set(query.attributesToHighlight)
        var crops: [String: Int] = [:]
        for (name, length) in query.attributesToCrop { crops[name] = length ?? query.cropLength }
        guard !highlights.isEmpty || !crops.isEmpty || query.showMatchesPosition else { return hit }
        if !highlights.isEmpty || !crops.isEmpty {
            var formatted = JSONObject()
            for (name, value) in hit {
                let highlight = highlights.contains("*") || highlights.contains(name)
                let crop = crops[name] ?? crops["*"]
                formatted[name] = highlight || crop != nil ? self.format(value, highlight: highlight, crop: crop) : value
            }
            hit["_formatted"] = .object(formatted)
        }
        if query.showMatchesPosition {
            var positions = JSONObject()
            for (name, value) in hit where name != "_formatted" {
                guard case .string(let text) = value else { continue }
                let found = matches(in: text)
                if !found.isEmpty { positions[name] = .array(found.map { ["start": .integer(Int64($0.start)), "length": .integer(Int64($0.length))] }) }
            }
            hit["_matchesPosition"] = .object(positions)
        }
        return hit
    }

    /// Strings are marked; numbers become strings (as Meilisearch's `_formatted` shows them);
    /// arrays and objects are formatted inside.
    private func format(_ value: JSONValue, highlight: Bool, crop: Int?) -> JSONValue {
        switch value {
        case .string(let text): return .string(format(text, highlight: highlight, crop: crop))
        case .integer(let number): return .string(String(number))
        case .number(let number): return .string(String(number))
        case .array(let items): return .array(items.map { format($0, highlight: highlight, crop: crop) })
        case .object(let object):
            var result = JSONObject()
            for (key, inner) in object { result[key] = format(inner, highlight: highlight, crop: crop) }
            return .object(result)
        default: return value
        }
    }

    private func format(_ text: String, highlight: Bool, crop requested: Int?) -> String {
        let tokens = TextNormalizer.tokens(text, limit: 100_000)
        // Text that fits (or has no words) is shown whole, punctuation included, as Meilisearch does.
        let crop = requested.flatMap { $0 > 0 && tokens.count > $0 ? $0 : nil }
        if requested != nil, crop == nil, requested == 0, !tokens.isEmpty { return query.cropMarker }
        var window = 0..<tokens.count
        if let crop {
            let first = tokens.firstIndex { highlighted[$0.word] != nil } ?? 0
            let start = max(0, min(first - crop / 2, tokens.count - crop))
            window = start..<min(start + max(crop, 0), tokens.count)
        }
        guard !window.isEmpty || crop == nil else { return query.cropMarker }
        let scalars = text.unicodeScalars
        var output = ""
        var cursor = crop != nil && !tokens.isEmpty ? tokens[window.lowerBound].range.lowerBound : scalars.startIndex
        if crop != nil, window.lowerBound > 0 { output += query.cropMarker }
        for token in tokens[window] {
            output += String(scalars[cursor..<token.range.lowerBound])
            if highlight, let marked = highlighted[token.word] {
                var end = token.range.upperBound
                if let length = marked {
                    end = scalars.index(token.range.lowerBound, offsetBy: length, limitedBy: token.range.upperBound) ?? token.range.upperBound
                }
                output += query.highlightPreTag + String(scalars[token.range.lowerBound..<end]) + query.highlightPostTag
                output += String(scalars[end..<token.range.upperBound])
            } else {
                output += String(scalars[token.range])
            }
            cursor = token.range.upperBound
        }
        if crop != nil, !tokens.isEmpty {
            if window.upperBound < tokens.count { output += query.cropMarker }
        } else {
            output += String(scalars[cursor...])
        }
        return output
    }

    /// Where matched words are, in UTF-8 bytes as Meilisearch reports them.
    private func matches(in text: String) -> [(start: Int, length: Int)] {
        TextNormalizer.tokens(text, limit: 100_000).compactMap { token in
            guard highlighted[token.word] != nil else { return nil }
            let start = text.utf8.distance(from: text.utf8.startIndex, to: token.range.lowerBound)
            return (start, text.utf8.distance(from: token.range.lowerBound, to: token.range.upperBound))
        }
    }
}
