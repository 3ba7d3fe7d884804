import Foundation
import Runtime
import Tenancy

/// One WebSocket client of a tenant: who it is (refreshed by `access_token`), what waits to be
/// written to it, and its per-client counters.
public final class RealtimeSession: @unchecked Sendable {
    public let id: UInt64
    public let outbox: RealtimeOutbox
    private let lock = Lock()
    private var currentCaller: Caller
    private var expiresAt: Date?
    private let wire: any RealtimeWire

    public init(id: UInt64, caller: Caller, outboxLimit: Int, wire: any RealtimeWire) {
        self.id = id
        self.wire = wire
        self.currentCaller = caller
        self.outbox = RealtimeOutbox(limit: outboxLimit)
        self.expiresAt = Self.expiry(caller.claims)
    }

    public var caller: Caller { lock.withLock { currentCaller } }

    public func replaceCaller(_ caller: Caller) {
        lock.withLock {
            currentCaller = caller
            expiresAt = Self.expiry(caller.claims)
        }
    }

    /// Whether the token the client authenticated with has run out (it must send a fresh one).
    public var tokenExpired: Bool {
        lock.withLock { expiresAt.map { $0 < Date() } ?? false }
    }

    public static func expired(_ claims: JSONObject) -> Bool {
        expiry(claims).map { $0 < Date() } ?? false
    }

    private static func expiry(_ claims: JSONObject) -> Date? {
        claims["exp"]?.doubleValue.map { Date(timeIntervalSince1970: $0) }
    }

    /// Queues an encoded frame; a client too far behind is told and disconnected instead.
    public func send(_ frame: String, topic: String) {
        outbox.send(frame, overflow: wire.system(
            topic: topic, channel: topic, ok: false, message: "the client is not reading fast enough; disconnecting (outbound queue full)",
            extension: "system"))
    }
}
