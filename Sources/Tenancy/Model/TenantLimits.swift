/// The per-tenant isolation knobs. Stored on the tenant record; changed through the admin API.
public struct TenantLimits: Sendable, Equatable, Codable {
    /// Sustained requests per second (token-bucket refill rate).
    public var requestsPerSecond: Double
    /// Requests allowed in a burst above the sustained rate (token-bucket capacity).
    public var burst: Int
    /// Requests executing at once.
    public var maxConcurrent: Int
    /// Requests allowed to wait for a slot; more are refused with 503.
    public var maxQueued: Int
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int
    /// Deadline for one request, in milliseconds.
    public var requestTimeoutMs: Int
    /// Realtime quotas, in the spirit of Supabase's defaults.
    public var realtime: RealtimeLimits = .default
    /// Object storage quotas.
    public var storage: StorageLimits = .default
    /// Background jobs (webhook deliveries, cron runs, e-mails).
    public var jobs: JobLimits = .default
    /// Edge functions (contract ../shared/contracts/functions.md, `limits.functions`).
    public var functions: FunctionLimits = .default
    /// The generated GraphQL API (contract ../shared/contracts/graphql.md, `/admin/v1/tenants/{slug}/graphql`).
    public var graphql: GraphQLSettings = .default

    public static let `default` = TenantLimits(
        requestsPerSecond: 200, burst: 400, maxConcurrent: 32, maxQueued: 128,
        maxBodyBytes: 1 << 20, requestTimeoutMs: 15_000)

    public init(requestsPerSecond: Double, burst: Int, maxConcurrent: Int, maxQueued: Int, maxBodyBytes: Int, requestTimeoutMs: Int) {
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
        self.maxConcurrent = maxConcurrent
        self.maxQueued = maxQueued
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeoutMs = requestTimeoutMs
    }

    enum CodingKeys: String, CodingKey {
        case requestsPerSecond, burst, maxConcurrent, maxQueued, maxBodyBytes, requestTimeoutMs, realtime, storage, jobs, functions, graphql
    }

    /// Records written before realtime or storage existed lack them: they get the defaults.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        requestsPerSecond = try container.decode(Double.self, forKey: .requestsPerSecond)
        burst = try container.decode(Int.self, forKey: .burst)
        maxConcurrent = try container.decode(Int.self, forKey: .maxConcurrent)
        maxQueued = try container.decode(Int.self, forKey: .maxQueued)
        maxBodyBytes = try container.decode(Int.self, forKey: .maxBodyBytes)
        requestTimeoutMs = try container.decode(Int.self, forKey: .requestTimeoutMs)
        realtime = try container.decodeIfPresent(RealtimeLimits.self, forKey: .realtime) ?? .default
        storage = try container.decodeIfPresent(StorageLimits.self, forKey: .storage) ?? .default
        jobs = try container.decodeIfPresent(JobLimits.self, forKey: .jobs) ?? .default
        functions = try container.decodeIfPresent(FunctionLimits.self, forKey: .functions) ?? .default
        graphql = try container.decodeIfPresent(GraphQLSettings.self, forKey: .graphql) ?? .default
    }

    /// Bounds that keep one tenant's settings from hurting the node: each problem names its field.
    public func problems() -> [String] {
        var problems: [String] = realtime.problems() + storage.problems() + jobs.problems() + functions.problems() + graphql.problems()
        if !(requestsPerSecond > 0 && requestsPerSecond <= 1_000_000) { problems.append("requestsPerSecond must be in (0, 1000000]") }
        if !(1...1_000_000).contains(burst) { problems.append("burst must be in [1, 1000000]") }
        if !(1...10_000).contains(maxConcurrent) { problems.append("maxConcurrent must be in [1, 10000]") }
        if !(0...100_000).contains(maxQueued) { problems.append("maxQueued must be in [0, 100000]") }
        if !(1...(256 << 20)).contains(maxBodyBytes) { problems.append("maxBodyBytes must be in [1, 268435456]") }
        if !(10...600_000).contains(requestTimeoutMs) { problems.append("requestTimeoutMs must be in [10, 600000]") }
        return problems
    }
}

/// Per-tenant realtime quotas. Supabase's free-tier defaults are 200 concurrent clients, 100
/// channels per client, 100 joins/s, 100 messages/s and 256 KiB payloads; ours are the same
/// except messages, which are counted per tenant for client-sent messages.
public struct RealtimeLimits: Sendable, Equatable, Codable {
    public var maxConnections: Int
    public var maxChannelsPerClient: Int
    public var joinsPerSecond: Double
    /// Client-sent messages (broadcast, presence) per second, for the whole tenant.
    public var eventsPerSecond: Double
    public var maxPayloadBytes: Int
    /// Messages waiting to be written to one client; a client further behind is disconnected.
    public var outboundQueue: Int

    public static let `default` = RealtimeLimits(
        maxConnections: 200, maxChannelsPerClient: 100, joinsPerSecond: 100, eventsPerSecond: 100, maxPayloadBytes: 256 << 10,
        outboundQueue: 1000)

    public init(maxConnections: Int, maxChannelsPerClient: Int, joinsPerSecond: Double, eventsPerSecond: Double, maxPayloadBytes: Int, outboundQueue: Int) {
        self.maxConnections = maxConnections
        self.maxChannelsPerClient = maxChannelsPerClient
        self.joinsPerSecond = joinsPerSecond
        self.eventsPerSecond = eventsPerSecond
        self.maxPayloadBytes = maxPayloadBytes
        self.outboundQueue = outboundQueue
    }

    func problems() -> [String] {
        var problems: [String] = []
        if !(1...100_000).contains(maxConnections) { problems.append("realtime.maxConnections must be in [1, 100000]") }
        if !(1...10_000).contains(maxChannelsPerClient) { problems.append("realtime.maxChannelsPerClient must be in [1, 10000]") }
        if !(joinsPerSecond > 0 && joinsPerSecond <= 100_000) { problems.append("realtime.joinsPerSecond must be in (0, 100000]") }
        if !(eventsPerSecond > 0 && eventsPerSecond <= 1_000_000) { problems.append("realtime.eventsPerSecond must be in (0, 1000000]") }
        if !(64...(16 << 20)).contains(maxPayloadBytes) { problems.append("realtime.maxPayloadBytes must be in [64, 16777216]") }
        if !(1...1_000_000).contains(outboundQueue) { problems.append("realtime.outboundQueue must be in [1, 1000000]") }
        return problems
    }
}

/// Per-tenant object storage quotas (a bucket's own `file_size_limit` may only lower the object
/// limit). Defaults: 1 GiB in all, 50 MiB per object, 100 buckets.
public struct StorageLimits: Sendable, Equatable, Codable {
    public var maxBytes: Int
    public var maxObjectBytes: Int
    public var maxBuckets: Int

    public static let `default` = StorageLimits(maxBytes: 1 << 30, maxObjectBytes: 50 << 20, maxBuckets: 100)

    public init(maxBytes: Int, maxObjectBytes: Int, maxBuckets: Int) {
        self.maxBytes = maxBytes
        self.maxObjectBytes = maxObjectBytes
        self.maxBuckets = maxBuckets
    }

    func problems() -> [String] {
        var problems: [String] = []
        if !(0...(1 << 50)).contains(maxBytes) { problems.append("storage.maxBytes must be in [0, 2^50]") }
        if !(0...(1 << 40)).contains(maxObjectBytes) { problems.append("storage.maxObjectBytes must be in [0, 2^40]") }
        if !(0...100_000).contains(maxBuckets) { problems.append("storage.maxBuckets must be in [0, 100000]") }
        return problems
    }
}

/// Per-tenant job quotas: one tenant's backlog never takes another's turn (the node's job slots
/// go round the tenants with due work) nor floods its receivers.
public struct JobLimits: Sendable, Equatable, Codable {
    /// Jobs of the tenant running at once on its owner.
    public var maxInFlight: Int
    /// Attempts started per second.
    public var perSecond: Double
    /// Pending and running jobs; more are refused (MB845) rather than piled up.
    public var maxPending: Int

    public static let `default` = JobLimits(maxInFlight: 8, perSecond: 50, maxPending: 100_000)

    public init(maxInFlight: Int, perSecond: Double, maxPending: Int) {
        self.maxInFlight = maxInFlight
        self.perSecond = perSecond
        self.maxPending = maxPending
    }

    func problems() -> [String] {
        var problems: [String] = []
        if !(1...256).contains(maxInFlight) { problems.append("jobs.maxInFlight must be in [1, 256]") }
        if !(perSecond > 0 && perSecond <= 100_000) { problems.append("jobs.perSecond must be in (0, 100000]") }
        if !(0...10_000_000).contains(maxPending) { problems.append("jobs.maxPending must be in [0, 10000000]") }
        return problems
    }
}

/// Per-tenant function quotas: how many calls run and wait at once, and the largest timeout,
/// memory, module, output and number of functions a deploy may ask for.
public struct FunctionLimits: Sendable, Equatable, Codable {
    public var maxConcurrent: Int
    /// Calls waiting for a turn; more are refused with 503 MB875.
    public var maxQueued: Int
    public var maxTimeoutMs: Int
    public var maxMemoryMb: Int
    public var maxModuleBytes: Int
    /// Functions of the tenant; another is refused with 409 MB874.
    public var maxFunctions: Int
    public var maxOutputBytes: Int

    public static let `default` = FunctionLimits(
        maxConcurrent: 2, maxQueued: 64, maxTimeoutMs: 10_000, maxMemoryMb: 256, maxModuleBytes: 10 << 20, maxFunctions: 100, maxOutputBytes: 6 << 20)

    public init(maxConcurrent: Int, maxQueued: Int, maxTimeoutMs: Int, maxMemoryMb: Int, maxModuleBytes: Int, maxFunctions: Int, maxOutputBytes: Int) {
        self.maxConcurrent = maxConcurrent
        self.maxQueued = maxQueued
        self.maxTimeoutMs = maxTimeoutMs
        self.maxMemoryMb = maxMemoryMb
        self.maxModuleBytes = maxModuleBytes
        self.maxFunctions = maxFunctions
        self.maxOutputBytes = maxOutputBytes
    }

    func problems() -> [String] {
        var problems: [String] = []
        if !(1...256).contains(maxConcurrent) { problems.append("functions.maxConcurrent must be in [1, 256]") }
        if !(0...10_000).contains(maxQueued) { problems.append("functions.maxQueued must be in [0, 10000]") }
        if !(10...600_000).contains(maxTimeoutMs) { problems.append("functions.maxTimeoutMs must be in [10, 600000]") }
        if !(1...4_096).contains(maxMemoryMb) { problems.append("functions.maxMemoryMb must be in [1, 4096]") }
        if !(1_024...(256 << 20)).contains(maxModuleBytes) { problems.append("functions.maxModuleBytes must be in [1024, 268435456]") }
        if !(0...10_000).contains(maxFunctions) { problems.append("functions.maxFunctions must be in [0, 10000]") }
        if !(1_024...(256 << 20)).contains(maxOutputBytes) { problems.append("functions.maxOutputBytes must be in [1024, 268435456]") }
        return problems
    }
}
