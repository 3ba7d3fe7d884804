import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime
import Tenancy

/// A PostgreSQL source's committed changes, read through a persistent logical replication slot
/// with wal2json (format-version 2).
///
/// The slot is named per tenant and source and created on first use. Each round peeks a batch of
/// whole transactions, hands their changes (in commit order) to `dispatch`, and only then advances
/// the slot to the last commit dispatched — so a node that dies mid-way delivers those changes
/// again after restart (at least once), and changes committed while no node ran are waiting in
/// the slot. Only one node reads a slot at a time: the tenant's lease owner.
///
/// The slot is read with SQL (`pg_logical_slot_peek_changes` / `pg_replication_slot_advance`)
/// over an ordinary connection, polled every `interval` (20 ms) while idle, not with libpq's streaming replication
/// protocol: postgres-nio has no replication mode and there is no libpq shim yet.
public actor PostgresChangeFeed {
    public enum Capability: Sendable, Equatable {
        case available
        /// Why the source cannot do logical decoding, in words for the admin.
        case unavailable(String)
    }

    public let slot: String
    private let url: PostgresURL
    private let interval: Duration
    private let batch: Int
    private let logger: Logger
    private var connection: PostgresConnection?

    public init(slot: String, url: PostgresURL, interval: Duration = .milliseconds(20), batch: Int = 2000, logger: Logger) {
        self.slot = slot
        self.url = url
        self.interval = interval
        self.batch = batch
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

    /// Whether the source's server can feed this: `wal_level = logical`, the REPLICATION
    /// privilege (or superuser), and wal2json installed and allowed.
    public static func probe(url: PostgresURL, logger: Logger) async -> Capability {
        do {
            let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 1, logger: logger)
            defer { Task { try? await connection.close() } }
            let rows = try await connection.query(
                """
                select current_setting('wal_level'),
                       (select rolreplication or rolsuper from pg_roles where rolname = current_user),
                       coalesce((select setting from pg_settings where name = 'output_plugin_libraries'), '')
                """, logger: logger)
            for try await (level, replication, allowed) in rows.decode((String, Bool, String).self) {
                if level != "logical" { return .unavailable("wal_level is '\(level)', not 'logical'") }
                if !replication { return .unavailable("the source's role has no REPLICATION privilege") }
                if !allowed.isEmpty && !allowed.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).contains("wal2json") {
                    return .unavailable("wal2json is not in output_plugin_libraries")
                }
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

    /// Reads changes until cancelled, handing each round's changes to `dispatch` before the slot
    /// moves past them. Throws when the database goes away (its supervisor restarts it).
    public func run(dispatch: @escaping @Sendable ([ChangeEvent]) async -> Void) async throws {
        do {
            try await loop(dispatch: dispatch)
        } catch let error as PSQLError {
            // The supervisor shows this: the server's own words, not postgres-nio's redacted text.
            throw FeedError.database(error.serverInfo?[.message] ?? "\(error.code)")
        }
    }

    private func loop(dispatch: @escaping @Sendable ([ChangeEvent]) async -> Void) async throws {
        let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 2, logger: logger)
        self.connection = connection
        defer {
            self.connection = nil
            Task { try? await connection.close() }
        }
        try await ensureSlot(on: connection)
        while !Task.isCancelled {
            let (events, last) = try await peek(on: connection)
            if !events.isEmpty { await dispatch(events) }
            if let last {
                try await Self.complete(connection.query("select pg_replication_slot_advance(\(slot)::name, \(last)::pg_lsn)", logger: logger))
            }
            if events.isEmpty && last == nil {
                try await Task.sleep(for: interval)
            }
        }
    }

    private func ensureSlot(on connection: PostgresConnection) async throws {
        let existing = try await connection.query("select plugin from pg_replication_slots where slot_name = \(slot)", logger: logger)
        for try await plugin in existing.decode(String.self) {
            guard plugin == "wal2json" else { throw FeedError.foreignSlot(slot, plugin) }
            return
        }
        try await Self.complete(connection.query("select pg_create_logical_replication_slot(\(slot)::name, 'wal2json')", logger: logger))
        logger.info("created replication slot", metadata: ["slot": .string(slot)])
    }

    /// One batch of whole transactions: their changes, and the LSN of the last commit in it.
    private func peek(on connection: PostgresConnection) async throws -> ([ChangeEvent], String?) {
        let rows = try await connection.query(
            """
            select lsn::text, data from pg_logical_slot_peek_changes(\(slot)::name, null, \(unescaped: String(batch)),
              'format-version', '2', 'include-timestamp', '1', 'include-types', '1', 'include-transaction', '1')
            """, logger: logger)
        var events: [ChangeEvent] = []
        var pending: [ChangeEvent] = []
        var last: String?
        var stamp: String?
        for try await (lsn, data) in rows.decode((String, String).self) {
            if data.hasPrefix("{\"action\":\"B\"") {
                pending = []
                stamp = Self.timestamp(data)
                continue
            }
            if data.hasPrefix("{\"action\":\"C\"") {
                events.append(contentsOf: pending)
                pending = []
                last = lsn
                continue
            }
            do {
                if let event = try Wal2JSONDecoder.decode(data, commitTimestamp: stamp) { pending.append(event) }
            } catch {
                logger.error("skipping a change wal2json wrote that cannot be read", metadata: ["error": .string("\(error)")])
            }
        }
        return (events, last)
    }

    private static func timestamp(_ data: String) -> String? {
        (try? JSONValue.parse(Array(data.utf8)))?["timestamp"]?.stringValue
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
