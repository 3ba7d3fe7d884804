import Foundation
import Hummingbird

extension EdgeContext {
    /// A path parameter (a table, a function, a source) as the name it spells: percent-decoded
    /// once, as PostgREST decodes `/rest/v1/Mixed%20Case%20Things`. The router matches raw
    /// segments; every handler reads names through here, so none decodes twice or not at all.
    /// A segment that is not valid percent-encoding stays as it came (and finds no such name).
    func name(_ parameter: String) -> String? {
        guard let raw = parameters.get(parameter) else { return nil }
        guard raw.utf8.contains(UInt8(ascii: "%")) else { return raw }
        return raw.removingPercentEncoding ?? raw
    }
}
