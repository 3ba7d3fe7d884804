import Foundation
import NIOConcurrencyHelpers
import Tenancy

/// A tenant's stored bytes and the bytes promised to uploads in flight, kept together under one
/// lock so that concurrent uploads cannot together pass the quota: each reserves before it
/// writes; a commit turns its reservation into stored bytes in the same step (no moment where
/// neither counts); a refused upload gives its reservation back. Stored bytes come from the
/// control plane at first use and again when older than `refresh` (other nodes store too).
public final class StorageLedger: Sendable {
    private struct State {
        var stored: Int?
        var loadedAt = Date.distantPast
        var reserved = 0
        /// Bumped by every change to stored bytes: a load that overlapped one is stale.
        var version = 0
    }

    private let state = NIOLockedValueBox(State())
    private let refresh: TimeInterval

    public init(refresh: TimeInterval = 5) {
        self.refresh = refresh
    }

    public var inFlight: Int { state.withLockedValue { $0.reserved } }

    /// Takes `bytes` more if stored + reserved + bytes − `credit` stays within `limit`.
    public func reserve(_ bytes: Int, limit: Int, credit: Int = 0, load: () async throws -> Int) async throws -> Bool {
        for _ in 0..<3 {
            let (stale, version) = state.withLockedValue { ($0.stored == nil || Date().timeIntervalSince($0.loadedAt) > refresh, $0.version) }
            guard stale else { break }
            let stored = try await load()
            // Kept only if no commit or removal happened meanwhile: one that did may or may not be
            // in what was read, and the ledger already counts it.
            let kept = state.withLockedValue { state -> Bool in
                guard state.version == version else { return false }
                state.stored = stored
                state.loadedAt = Date()
                return true
            }
            if kept { break }
        }
        return state.withLockedValue { state in
            // Compared by subtraction: every term is at most the limit or refused, so no sum of
            // client-declared sizes can overflow.
            let used = (state.stored ?? 0) + state.reserved - credit
            guard bytes >= 0, bytes <= limit, used <= limit - bytes else { return false }
            state.reserved += bytes
            return true
        }
    }

    public func release(_ bytes: Int) {
        state.withLockedValue { $0.reserved = max(0, $0.reserved - bytes) }
    }

    /// A write committed: `added` bytes stored, `removed` bytes gone (a replaced version), and
    /// its reservation released, at once.
    public func committed(added: Int, removed: Int, releasing reserved: Int) {
        state.withLockedValue { state in
            state.reserved = max(0, state.reserved - reserved)
            state.version += 1
            if let stored = state.stored { state.stored = max(0, stored + added - removed) }
        }
    }

    public func removed(_ bytes: Int) {
        state.withLockedValue { state in
            state.version += 1
            if let stored = state.stored { state.stored = max(0, stored - bytes) }
        }
    }
}
