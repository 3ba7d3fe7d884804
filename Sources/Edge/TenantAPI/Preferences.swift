/// The `Prefer` header, as PostgREST reads it.
struct Preferences {
    enum Return: String { case representation, minimal, headersOnly = "headers-only" }
    enum Count: String { case exact, planned, estimated }
    enum Resolution: String { case mergeDuplicates = "merge-duplicates", ignoreDuplicates = "ignore-duplicates" }

    var returning: Return?
    var count: Count?
    var resolution: Resolution?
    var missingDefault = false
    var rollback = false

    /// The `Preference-Applied` value for a write, naming `resolution` and `missing` only where the
    /// write honoured them.
    func appliedForWrite(resolution honoursResolution: Bool, missing honoursMissing: Bool) -> String? {
        var applied: [String] = []
        if honoursResolution, let resolution { applied.append("resolution=\(resolution.rawValue)") }
        if honoursMissing, missingDefault { applied.append("missing=default") }
        if let returning { applied.append("return=\(returning.rawValue)") }
        if rollback { applied.append("tx=rollback") }
        return applied.isEmpty ? nil : applied.joined(separator: ", ")
    }

    init(_ header: String?) {
        for raw in (header ?? "").split(separator: ",") {
            let item = raw.trimmingCharacters(in: .whitespaces)
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "return": returning = Return(rawValue: parts[1])
            case "count": count = Count(rawValue: parts[1])
            case "resolution": resolution = Resolution(rawValue: parts[1])
            case "missing": missingDefault = parts[1] == "default"
            case "tx": rollback = parts[1] == "rollback"
            default: continue
            }
        }
    }
}

import Foundation
