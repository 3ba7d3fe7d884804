import Foundation
import Runtime

/// Row ⇄ value conversions shared by both store implementations.
enum StoreCoding {
    static func encodeLimits(_ limits: TenantLimits) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(limits)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Unknown or missing fields fall back to the defaults, so a limit added later does not break
    /// rows written before it.
    static func decodeLimits(_ text: String) -> TenantLimits {
        guard let object = try? JSONValue.parse(Array(text.utf8)).objectValue else { return .default }
        var limits = TenantLimits.default
        if let value = object["requestsPerSecond"]?.doubleValue { limits.requestsPerSecond = value }
        if let value = object["burst"]?.intValue { limits.burst = Int(value) }
        if let value = object["maxConcurrent"]?.intValue { limits.maxConcurrent = Int(value) }
        if let value = object["maxQueued"]?.intValue { limits.maxQueued = Int(value) }
        if let value = object["maxBodyBytes"]?.intValue { limits.maxBodyBytes = Int(value) }
        if let value = object["requestTimeoutMs"]?.intValue { limits.requestTimeoutMs = Int(value) }
        if let realtime = object["realtime"] {
            var quotas = limits.realtime
            if let value = realtime["maxConnections"]?.intValue { quotas.maxConnections = Int(value) }
            if let value = realtime["maxChannelsPerClient"]?.intValue { quotas.maxChannelsPerClient = Int(value) }
            if let value = realtime["joinsPerSecond"]?.doubleValue { quotas.joinsPerSecond = value }
            if let value = realtime["eventsPerSecond"]?.doubleValue { quotas.eventsPerSecond = value }
            if let value = realtime["maxPayloadBytes"]?.intValue { quotas.maxPayloadBytes = Int(value) }
            if let value = realtime["outboundQueue"]?.intValue { quotas.outboundQueue = Int(value) }
            limits.realtime = quotas
        }
        if let storage = object["storage"] {
            if let value = storage["maxBytes"]?.intValue { limits.storage.maxBytes = Int(value) }
            if let value = storage["maxObjectBytes"]?.intValue { limits.storage.maxObjectBytes = Int(value) }
            if let value = storage["maxBuckets"]?.intValue { limits.storage.maxBuckets = Int(value) }
        }
        if let jobs = object["jobs"] {
            if let value = jobs["maxInFlight"]?.intValue { limits.jobs.maxInFlight = Int(value) }
            if let value = jobs["perSecond"]?.doubleValue { limits.jobs.perSecond = value }
            if let value = jobs["maxPending"]?.intValue { limits.jobs.maxPending = Int(value) }
        }
        if let functions = object["functions"] {
            if let value = functions["maxConcurrent"]?.intValue { limits.functions.maxConcurrent = Int(value) }
            if let value = functions["maxQueued"]?.intValue { limits.functions.maxQueued = Int(value) }
            if let value = functions["maxTimeoutMs"]?.intValue { limits.functions.maxTimeoutMs = Int(value) }
            if let value = functions["maxMemoryMb"]?.intValue { limits.functions.maxMemoryMb = Int(value) }
            if let value = functions["maxModuleBytes"]?.intValue { limits.functions.maxModuleBytes = Int(value) }
            if let value = functions["maxFunctions"]?.intValue { limits.functions.maxFunctions = Int(value) }
            if let value = functions["maxOutputBytes"]?.intValue { limits.functions.maxOutputBytes = Int(value) }
        }
        if let graphql = object["graphql"] {
            if let value = graphql["introspection"]?.boolValue { limits.graphql.introspection = value }
            if let value = graphql["maxRows"]?.intValue { limits.graphql.maxRows = Int(value) }
            if let value = graphql["maxDepth"]?.intValue { limits.graphql.maxDepth = Int(value) }
            if let value = graphql["maxCost"]?.intValue { limits.graphql.maxCost = Int(value) }
            if let value = graphql["inflectNames"]?.boolValue { limits.graphql.inflectNames = value }
        }
        return limits
    }

    static func encodeObject(_ object: JSONObject) -> String {
        String(decoding: JSONValue.object(object).encoded(), as: UTF8.self)
    }

    static func decodeObject(_ text: String) throws -> JSONObject {
        guard let object = try? JSONValue.parse(Array(text.utf8)).objectValue else {
            throw ControlPlaneError.corrupt("a stored JSON document is not an object")
        }
        return object
    }

    static func status(_ text: String) throws -> TenantStatus {
        guard let status = TenantStatus(rawValue: text) else { throw ControlPlaneError.corrupt("unknown tenant status \(text)") }
        return status
    }

    /// A stored document (a webhook's spec, its sealed secrets) as sorted-key JSON; dates in ms.
    static func encodeDocument(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func decodeDocument<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        do { return try decoder.decode(type, from: Data(text.utf8)) } catch { throw ControlPlaneError.corrupt("a stored \(type) does not decode: \(error)") }
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
