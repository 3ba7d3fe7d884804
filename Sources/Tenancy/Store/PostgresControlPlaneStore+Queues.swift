import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// Queues in the cluster's control plane: reads take visible rows with `FOR UPDATE SKIP LOCKED`
/// (pgmq's own way), so concurrent readers never block on or double-read a message.
extension PostgresControlPlaneStore {
    private typealias MessageRow = (Int64, Int, Date, Date, String)

    /// A transaction whose own errors (`QueueStoreError`) reach the caller unwrapped.
    private func queueTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { db in try await body(db) }
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError, inner is QueueStoreError { throw inner }
            throw error
        }
    }

    private static func requireQueue(_ db: PostgresConnection, _ tenant: String, _ name: String, logger: Logger, lock: Bool = false) async throws {
        let rows = try await db.query(
            "SELECT 1 FROM minibaas.queues WHERE tenant = \(tenant) AND name = \(name) \(unescaped: lock ? "FOR UPDATE" : "")", logger: logger)
        guard try await hasRow(rows) else { throw QueueStoreError.missing }
    }

    public func createQueue(tenant: String, name: String, at: Date) async throws {
        do {
            _ = try await Self.hasRow(client.query(
                "INSERT INTO minibaas.queues (tenant, name, created_at) VALUES (\(tenant), \(name), \(at))", logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("queue '\(name)'")
        }
    }

    public func queueMetrics(tenant: String, now: Date) async throws -> [QueueMetrics] {
        var found: [QueueMetrics] = []
        for try await (name, last, created, length, newest, oldest) in try await client.query(
            """
            SELECT q.name, q.last_id, q.created_at, count(m.msg_id)::bigint, max(m.enqueued_at), min(m.enqueued_at)
            FROM minibaas.queues q LEFT JOIN minibaas.queue_messages m ON m.tenant = q.tenant AND m.queue = q.name AND m.archived_at IS NULL
            WHERE q.tenant = \(tenant) GROUP BY q.name, q.last_id, q.created_at ORDER BY q.name
            """, logger: logger
        ).decode((String, Int64, Date, Int, Date?, Date?).self) {
            found.append(QueueMetrics(name: name, length: length, newestAt: newest, oldestAt: oldest, totalMessages: last, createdAt: created))
        }
        return found
    }

    public func dropQueue(tenant: String, name: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.queues WHERE tenant = \(tenant) AND name = \(name) RETURNING 1", logger: logger))
    }

    public func purgeQueue(tenant: String, name: String) async throws -> Int {
        try await queueTransaction { db in
            try await Self.requireQueue(db, tenant, name, logger: self.logger)
            var count = 0
            for try await _ in try await db.query(
                "DELETE FROM minibaas.queue_messages WHERE tenant = \(tenant) AND queue = \(name) RETURNING 1", logger: self.logger) { count += 1 }
            return count
        }
    }

    public func send(tenant: String, queue: String, messages: [String], delay: TimeInterval, maxLength: Int, now: Date) async throws -> [Int64] {
        try await queueTransaction { db in
            // The queue's row is the id counter: locked for the transaction, so ids never repeat.
            var last: Int64?
            for try await value in try await db.query(
                "UPDATE minibaas.queues SET last_id = last_id + \(messages.count) WHERE tenant = \(tenant) AND name = \(queue) RETURNING last_id",
                logger: self.logger
            ).decode(Int64.self) { last = value }
            guard let last else { throw QueueStoreError.missing }
            var length = 0
            for try await n in try await db.query(
                "SELECT count(*)::bigint FROM minibaas.queue_messages WHERE tenant = \(tenant) AND queue = \(queue) AND archived_at IS NULL",
                logger: self.logger
            ).decode(Int.self) { length = n }
            guard length + messages.count <= maxLength else { throw QueueStoreError.full(limit: maxLength) }
            let first = last - Int64(messages.count) + 1
            let ids = (0..<Int64(messages.count)).map { first + $0 }
            _ = try await Self.hasRow(db.query(
                """
                INSERT INTO minibaas.queue_messages (tenant, queue, msg_id, enqueued_at, vt, message)
                SELECT \(tenant), \(queue), id, \(now), \(now.addingTimeInterval(delay)), body::jsonb
                FROM unnest(\(ids)::bigint[], \(messages)::text[]) AS t(id, body)
                """, logger: self.logger))
            return ids
        }
    }

    public func read(tenant: String, queue: String, visibility: TimeInterval, limit: Int, now: Date) async throws -> [QueueMessage] {
        try await queueTransaction { db in
            try await Self.requireQueue(db, tenant, queue, logger: self.logger)
            return try await Self.messages(db.query(
                """
                UPDATE minibaas.queue_messages SET read_ct = read_ct + 1, vt = \(now.addingTimeInterval(visibility))
                WHERE (tenant, queue, msg_id) IN (
                  SELECT tenant, queue, msg_id FROM minibaas.queue_messages
                  WHERE tenant = \(tenant) AND queue = \(queue) AND archived_at IS NULL AND vt <= \(now)
                  ORDER BY msg_id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING msg_id, read_ct, enqueued_at, vt, message::text
                """, logger: self.logger)).sorted { $0.id < $1.id }
        }
    }

    public func pop(tenant: String, queue: String, now: Date) async throws -> [QueueMessage] {
        try await queueTransaction { db in
            try await Self.requireQueue(db, tenant, queue, logger: self.logger)
            return try await Self.messages(db.query(
                """
                DELETE FROM minibaas.queue_messages
                WHERE (tenant, queue, msg_id) IN (
                  SELECT tenant, queue, msg_id FROM minibaas.queue_messages
                  WHERE tenant = \(tenant) AND queue = \(queue) AND archived_at IS NULL AND vt <= \(now)
                  ORDER BY msg_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING msg_id, read_ct, enqueued_at, vt, message::text
                """, logger: self.logger))
        }
    }

    public func archive(tenant: String, queue: String, id: Int64, at: Date) async throws -> Bool {
        try await queueTransaction { db in
            try await Self.requireQueue(db, tenant, queue, logger: self.logger)
            return try await Self.hasRow(db.query(
                """
                UPDATE minibaas.queue_messages SET archived_at = \(at)
                WHERE tenant = \(tenant) AND queue = \(queue) AND msg_id = \(id) AND archived_at IS NULL RETURNING 1
                """, logger: self.logger))
        }
    }

    public func deleteMessage(tenant: String, queue: String, id: Int64) async throws -> Bool {
        try await queueTransaction { db in
            try await Self.requireQueue(db, tenant, queue, logger: self.logger)
            return try await Self.hasRow(db.query(
                """
                DELETE FROM minibaas.queue_messages
                WHERE tenant = \(tenant) AND queue = \(queue) AND msg_id = \(id) AND archived_at IS NULL RETURNING 1
                """, logger: self.logger))
        }
    }

    private static func messages(_ rows: PostgresRowSequence) async throws -> [QueueMessage] {
        var found: [QueueMessage] = []
        for try await row in rows.decode(MessageRow.self) {
            found.append(QueueMessage(id: row.0, readCount: row.1, enqueuedAt: row.2, visibleAt: row.3, message: row.4))
        }
        return found
    }
}
