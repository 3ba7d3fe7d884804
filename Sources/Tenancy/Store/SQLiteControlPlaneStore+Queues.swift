import Foundation
import Runtime
import SQLiteNIO

/// Queues in the embedded control plane: one writer, so every operation is one short transaction.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date) -> SQLiteData { .integer(Int(StoreCoding.milliseconds(date))) }

    private static func requireQueue(_ db: SQLiteSession, _ tenant: String, _ name: String) throws -> Int64 {
        guard let row = try db.rows("SELECT last_id FROM queues WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]).first else {
            throw QueueStoreError.missing
        }
        return Int64(row.column("last_id")?.integer ?? 0)
    }

    public func createQueue(tenant: String, name: String, at: Date) async throws {
        try await transaction { db in
            guard try db.rows("SELECT 1 FROM queues WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]).isEmpty else {
                throw ControlPlaneError.duplicate("queue '\(name)'")
            }
            _ = try db.rows("INSERT INTO queues (tenant, name, created_at_ms) VALUES (?, ?, ?)", [.text(tenant), .text(name), Self.ms(at)])
        }
    }

    public func queueMetrics(tenant: String, now: Date) async throws -> [QueueMetrics] {
        try await read(
            """
            SELECT q.name, q.last_id, q.created_at_ms, count(m.msg_id) AS length, max(m.enqueued_at_ms) AS newest, min(m.enqueued_at_ms) AS oldest
            FROM queues q LEFT JOIN queue_messages m ON m.tenant = q.tenant AND m.queue = q.name AND m.archived_at_ms IS NULL
            WHERE q.tenant = ? GROUP BY q.name, q.last_id, q.created_at_ms ORDER BY q.name
            """, [.text(tenant)]
        ).map { row in
            QueueMetrics(
                name: row.column("name")?.string ?? "", length: row.column("length")?.integer ?? 0,
                newestAt: row.column("newest")?.integer.map { StoreCoding.date(milliseconds: Int64($0)) },
                oldestAt: row.column("oldest")?.integer.map { StoreCoding.date(milliseconds: Int64($0)) },
                totalMessages: Int64(row.column("last_id")?.integer ?? 0),
                createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)))
        }
    }

    public func dropQueue(tenant: String, name: String) async throws -> Bool {
        try await transaction { db in
            _ = try db.rows("DELETE FROM queue_messages WHERE tenant = ? AND queue = ?", [.text(tenant), .text(name)])
            return !(try db.rows("DELETE FROM queues WHERE tenant = ? AND name = ? RETURNING 1", [.text(tenant), .text(name)])).isEmpty
        }
    }

    public func purgeQueue(tenant: String, name: String) async throws -> Int {
        try await transaction { db in
            _ = try Self.requireQueue(db, tenant, name)
            return try db.rows("DELETE FROM queue_messages WHERE tenant = ? AND queue = ? RETURNING 1", [.text(tenant), .text(name)]).count
        }
    }

    public func send(tenant: String, queue: String, messages: [String], delay: TimeInterval, maxLength: Int, now: Date) async throws -> [Int64] {
        try await transaction { db in
            let last = try Self.requireQueue(db, tenant, queue)
            let length = try db.rows(
                "SELECT count(*) AS n FROM queue_messages WHERE tenant = ? AND queue = ? AND archived_at_ms IS NULL", [.text(tenant), .text(queue)]
            ).first?.column("n")?.integer ?? 0
            guard length + messages.count <= maxLength else { throw QueueStoreError.full(limit: maxLength) }
            var ids: [Int64] = []
            for (offset, message) in messages.enumerated() {
                let id = last + Int64(offset) + 1
                _ = try db.rows(
                    "INSERT INTO queue_messages (tenant, queue, msg_id, enqueued_at_ms, vt_ms, message) VALUES (?, ?, ?, ?, ?, ?)",
                    [.text(tenant), .text(queue), .integer(Int(id)), Self.ms(now), Self.ms(now.addingTimeInterval(delay)), .text(message)])
                ids.append(id)
            }
            _ = try db.rows(
                "UPDATE queues SET last_id = ? WHERE tenant = ? AND name = ?", [.integer(Int(last) + messages.count), .text(tenant), .text(queue)])
            return ids
        }
    }

    public func read(tenant: String, queue: String, visibility: TimeInterval, limit: Int, now: Date) async throws -> [QueueMessage] {
        try await transaction { db in
            _ = try Self.requireQueue(db, tenant, queue)
            return try db.rows(
                """
                UPDATE queue_messages SET read_ct = read_ct + 1, vt_ms = ?
                WHERE tenant = ? AND queue = ? AND msg_id IN (
                  SELECT msg_id FROM queue_messages WHERE tenant = ? AND queue = ? AND archived_at_ms IS NULL AND vt_ms <= ? ORDER BY msg_id LIMIT ?)
                RETURNING *
                """,
                [Self.ms(now.addingTimeInterval(visibility)), .text(tenant), .text(queue), .text(tenant), .text(queue), Self.ms(now), .integer(limit)]
            ).map(Self.message(from:)).sorted { $0.id < $1.id }
        }
    }

    public func pop(tenant: String, queue: String, now: Date) async throws -> [QueueMessage] {
        try await transaction { db in
            _ = try Self.requireQueue(db, tenant, queue)
            return try db.rows(
                """
                DELETE FROM queue_messages WHERE tenant = ? AND queue = ? AND msg_id = (
                  SELECT msg_id FROM queue_messages WHERE tenant = ? AND queue = ? AND archived_at_ms IS NULL AND vt_ms <= ? ORDER BY msg_id LIMIT 1)
                RETURNING *
                """, [.text(tenant), .text(queue), .text(tenant), .text(queue), Self.ms(now)]
            ).map(Self.message(from:))
        }
    }

    public func archive(tenant: String, queue: String, id: Int64, at: Date) async throws -> Bool {
        try await transaction { db in
            _ = try Self.requireQueue(db, tenant, queue)
            return !(try db.rows(
                "UPDATE queue_messages SET archived_at_ms = ? WHERE tenant = ? AND queue = ? AND msg_id = ? AND archived_at_ms IS NULL RETURNING 1",
                [Self.ms(at), .text(tenant), .text(queue), .integer(Int(id))])).isEmpty
        }
    }

    public func deleteMessage(tenant: String, queue: String, id: Int64) async throws -> Bool {
        try await transaction { db in
            _ = try Self.requireQueue(db, tenant, queue)
            return !(try db.rows(
                "DELETE FROM queue_messages WHERE tenant = ? AND queue = ? AND msg_id = ? AND archived_at_ms IS NULL RETURNING 1",
                [.text(tenant), .text(queue), .integer(Int(id))])).isEmpty
        }
    }

    private static func message(from row: SQLiteResultRow) -> QueueMessage {
        QueueMessage(
            id: Int64(row.column("msg_id")?.integer ?? 0), readCount: row.column("read_ct")?.integer ?? 0,
            enqueuedAt: StoreCoding.date(milliseconds: Int64(row.column("enqueued_at_ms")?.integer ?? 0)),
            visibleAt: StoreCoding.date(milliseconds: Int64(row.column("vt_ms")?.integer ?? 0)), message: row.column("message")?.string ?? "null")
    }
}
