import Foundation
import Runtime

/// Everything a tenant's request passes before it may use the tenant's resources: the rate limit,
/// the concurrency cap with its bounded queue, and the deadline. One gate per tenant, so a flooded
/// tenant queues or is refused on its own gate and never takes another tenant's slots.
public final class RequestGate: @unchecked Sendable {
    public enum Refusal: Error, Equatable, Sendable {
        case rateLimited(retryAfter: Int)
        case overloaded
        case deadlineExceeded
    }

    private let bucket: TokenBucket
    private let limiter: ConcurrencyLimiter
    /// The deadlines of the requests in the gate: one timer for all of them, not one each.
    private let deadlines = DeadlineQueue()
    private let lock = Lock()
    private var currentLimits: TenantLimits

    public init(limits: TenantLimits) {
        self.currentLimits = limits
        self.bucket = TokenBucket(rate: limits.requestsPerSecond, capacity: limits.burst)
        self.limiter = ConcurrencyLimiter(maxConcurrent: limits.maxConcurrent, maxQueued: limits.maxQueued)
    }

    public var limits: TenantLimits { lock.withLock { currentLimits } }
    public var activeCount: Int { limiter.activeCount }
    public var queuedCount: Int { limiter.queuedCount }

    public func apply(_ limits: TenantLimits) {
        let changed = lock.withLock { () -> Bool in
            defer { currentLimits = limits }
            return currentLimits != limits
        }
        guard changed else { return }
        bucket.reconfigure(rate: limits.requestsPerSecond, capacity: limits.burst)
        limiter.reconfigure(maxConcurrent: limits.maxConcurrent, maxQueued: limits.maxQueued)
    }

    /// Runs `body` once admitted, within the tenant's deadline (queueing time included). When the
    /// deadline passes, the calling task is cancelled (`DeadlineQueue.cancellingCaller`): call it from a task whose
    /// work ends with the request.
    public func run<T>(_ body: () async throws -> T) async throws -> T {
        try await run(withDeadline: true, body)
    }

    /// Without the deadline: for transfers whose length is the client's to choose (large uploads),
    /// which bound their own waiting with an idle timeout instead. Rate and concurrency still apply.
    public func run<T>(withDeadline: Bool, _ body: () async throws -> T) async throws -> T {
        if case .limited(let retryAfter) = bucket.take() {
            throw Refusal.rateLimited(retryAfter: max(1, Int(retryAfter.rounded(.up))))
        }
        guard withDeadline else { return try await admitted(body) }
        let deadline = Duration.milliseconds(limits.requestTimeoutMs)
        do {
            return try await deadlines.cancellingCaller(after: deadline) { try await admitted(body) }
        } catch is TimeoutError {
            throw Refusal.deadlineExceeded
        }
    }

    /// `body` within the concurrency cap: queued for a slot, refused when the queue is full.
    private func admitted<T>(_ body: () async throws -> T) async throws -> T {
        do {
            try await limiter.acquire()
        } catch ConcurrencyLimiter.Refusal.queueFull {
            throw Refusal.overloaded
        }
        defer { limiter.release() }
        return try await body()
    }
}
