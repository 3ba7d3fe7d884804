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

    /// Bounds that keep one tenant's settings from hurting the node: each problem names its field.
    public func problems() -> [String] {
        var problems: [String] = []
        if !(requestsPerSecond > 0 && requestsPerSecond <= 1_000_000) { problems.append("requestsPerSecond must be in (0, 1000000]") }
        if !(1...1_000_000).contains(burst) { problems.append("burst must be in [1, 1000000]") }
        if !(1...10_000).contains(maxConcurrent) { problems.append("maxConcurrent must be in [1, 10000]") }
        if !(0...100_000).contains(maxQueued) { problems.append("maxQueued must be in [0, 100000]") }
        if !(1...(256 << 20)).contains(maxBodyBytes) { problems.append("maxBodyBytes must be in [1, 268435456]") }
        if !(10...600_000).contains(requestTimeoutMs) { problems.append("requestTimeoutMs must be in [10, 600000]") }
        return problems
    }
}
