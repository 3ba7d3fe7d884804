import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime
import Tenancy

/// A PostgreSQL source's committed changes, read through a persistent logical replication slot
/// with wal2json (format-version 2).
///
/// The slot is named per tenant and source and created on first use. Its changes are streamed
/// over libpq's replication protocol (`ReplicationStream`); each transaction's changes are handed
/// to `dispatch` in commit order, and only then is the slot's position confirmed — so a node that
/// dies mid-way delivers those changes again after restart (at least once), and changes committed
/// while no node ran are waiting in the slot. Only one node reads a slot at a time: the tenant's
/// lease owner (the server refuses a second reader of an active slot).
public actor PostgresChangeFeed {
    public enum Capability: Sendable, Equatable {
        case available
        /// Why the source cannot do logical decoding, in words for the admin.
        case unavailable(String)
    }

    public let slot: String
    private let url: PostgresURL
    private let logger: Logger

    public init(slot: String, url: PostgresURL, logger: Logger) {
        self.slot = slot
        self.url = url
        self.logger = logger
    }

    /// `mb_{tenant}_{source}_{hash}`: readable, and the hash of the exact pair keeps two pairs
    /// that read alike (`acme-x`/`a` and `acme`/`x_a`) apart. Slot names allow lower-case
    /// letters, digits and underscores, at most 63 bytes.
    public static func slotName(tenant: String, source: String) -> String {
        let readable = String("\(tenant)_\(source)".lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.prefix(40))
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (tenant + "\u{0}" + source).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "mb_\(readable)_\(String(hash, radix: 16))"
    }

    /// Whether the source's server can feed this: `wal_level = logical` and the REPLICATION
    /// privilege (or superuser). With `tryPlugin`, also that wal2json is installed, by creating
    /// (and at once dropping) a temporary slot with it — what registration reports; a join finds
    /// out anyway when it creates the real slot.
    public static func probe(url: PostgresURL, tryPlugin: Bool = false, logger: Logger) async -> Capability {
        do {
            let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 1, logger: logger)
            defer { Task { try? await connection.close() } }
            let rows = try await connection.query(
                """
                select current_setting('wal_level'),
                       (select rolreplication or rolsuper from pg_roles where rolname = current_user)
                """, logger: logger)
            for try await (level, replication) in rows.decode((String, Bool).self) {
                if level != "logical" { return .unavailable("wal_level is '\(level)', not 'logical'") }
                if !replication { return .unavailable("the source's role has no REPLICATION privilege") }
            }
            guard tryPlugin else { return .available }
            do {
                // Creating a slot waits for transactions in progress; a busy server is not a
                // missing plugin, so a slow answer is taken as yes.
                try await complete(connection.query("set statement_timeout = '3s'", logger: logger))
                try await complete(connection.query(
                    "select pg_create_logical_replication_slot('mb_probe_' || pg_backend_pid(), 'wal2json', true)", logger: logger))
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "57014" {
                logger.notice("wal2json probe timed out; assuming it is there")
            } catch let error as PSQLError {
                let message = error.serverInfo?[.message] ?? "\(error.code)"
                return .unavailable(message.contains("wal2json") ? "wal2json is not installed on the server (\(message))" : message)
            }
            return .available
        } catch {
            return .unavailable("cannot probe the source: \(String(reflecting: error).prefix(200))")
        }
    }

    /// Creates the slot if it is missing, so that changes committed from now on are kept even
    /// before the feed's first round (a subscriber is told "subscribed" only after this).
    public func prepare() async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 4, logger: logger)
            defer { Task { try? await connection.close() } }
            try await ensureSlot(on: connection)
        } catch let error as PSQLError {
            throw FeedError.database(error.serverInfo?[.message] ?? "\(error.code)")
        }
    }

    /// Streams changes until cancelled, handing each transaction's changes to `dispatch` before
    /// the slot moves past them. Throws when the database goes away (the caller retries).
    public func run(dispatch: @escaping @Sendable ([ChangeEvent]) async -> Void) async throws {
        // The slot may have been dropped by hand since `prepare`; a missing slot is made again.
        try await prepare()
        do {
            try await ReplicationStream(parameters: url.replicationParameters, slot: slot, logger: logger).run(dispatch: dispatch)
        } catch let failure as ReplicationStream.Failure {
            throw FeedError.database(failure.description)
        }
    }

    private func ensureSlot(on connection: PostgresConnection) async throws {
        let existing = try await connection.query(
            "select plugin, coalesce(to_jsonb(s) ->> 'wal_status', '') from pg_replication_slots s where slot_name = \(slot)", logger: logger)
        var lost = false
        for try await (plugin, status) in existing.decode((String, String).self) {
            guard plugin == "wal2json" else { throw FeedError.foreignSlot(slot, plugin) }
            guard status == "lost" else { return }
            lost = true
        }
        if lost {
            // The server let go of the WAL the slot needed (max_slot_wal_keep_size): what was
            // committed in between is gone; a new slot follows from now on.
            logger.warning("replication slot lost its WAL; changes since it was last read are gone; making it anew", metadata: ["slot": .string(slot)])
            try await Self.complete(connection.query("select pg_drop_replication_slot(\(slot)::name)", logger: logger))
        }
        try await Self.complete(connection.query("select pg_create_logical_replication_slot(\(slot)::name, 'wal2json')", logger: logger))
        logger.info("created replication slot", metadata: ["slot": .string(slot)])
    }

    /// Drops the slot (the source is being deleted), so the server stops keeping WAL for it. The
    /// tenant's tree has just been told to stop; its feed lets go of the slot within moments.
    public static func dropSlot(_ slot: String, url: PostgresURL, logger: Logger) async {
        do {
            let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 3, logger: logger)
            defer { Task { try? await connection.close() } }
            for _ in 0..<50 {
                let rows = try await connection.query(
                    "select active from pg_replication_slots where slot_name = \(slot)", logger: logger)
                var active: Bool?
                for try await flag in rows.decode(Bool.self) { active = flag }
                guard let active else { return }
                if !active {
                    try await complete(connection.query("select pg_drop_replication_slot(\(slot)::name)", logger: logger))
                    logger.info("dropped replication slot", metadata: ["slot": .string(slot)])
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            logger.warning("replication slot still in use; not dropped", metadata: ["slot": .string(slot)])
        } catch {
            logger.warning("could not drop replication slot", metadata: ["slot": .string(slot), "error": .string("\(error)")])
        }
    }

    /// Reads a statement to its end: postgres-nio hands back the rows as soon as they are
    /// described, and closing the connection before the end would cancel the statement (a slot
    /// being created would vanish).
    static func complete(_ rows: PostgresRowSequence) async throws {
        for try await _ in rows {}
    }

    enum FeedError: Error, CustomStringConvertible {
        case foreignSlot(String, String)
        case database(String)
        var description: String {
            switch self {
            case .database(let message): "change feed: \(message)"
            case .foreignSlot(let slot, let plugin): "replication slot \(slot) exists with plugin \(plugin), not wal2json"
            }
        }
    }
}
