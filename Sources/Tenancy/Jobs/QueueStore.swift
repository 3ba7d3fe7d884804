import Foundation
import Runtime

/// A message of a tenant's queue, as pgmq's `message_record` shows it.
public struct QueueMessage: Sendable, Equatable {
    public var id: Int64
    /// How often it was read.
    public var readCount: Int
    public var enqueuedAt: Date
    /// Invisible to readers until then.
    public var visibleAt: Date
    /// The message, JSON text.
    public var message: String

    public init(id: Int64, readCount: Int, enqueuedAt: Date, visibleAt: Date, message: String) {
        self.id = id
        self.readCount = readCount
        self.enqueuedAt = enqueuedAt
        self.visibleAt = visibleAt
        self.message = message
    }
}

/// A queue's figures, as pgmq's `metrics` shows them.
public struct QueueMetrics: Sendable, Equatable {
    public var name: String
    /// Messages not deleted or archived.
    public var length: Int
    public var newestAt: Date?
    public var oldestAt: Date?
    /// Messages ever sent.
    public var totalMessages: Int64
    public var createdAt: Date

    public init(name: String, length: Int, newestAt: Date?, oldestAt: Date?, totalMessages: Int64, createdAt: Date) {
        self.name = name
        self.length = length
        self.newestAt = newestAt
        self.oldestAt = oldestAt
        self.totalMessages = totalMessages
        self.createdAt = createdAt
    }
}

public enum QueueStoreError: Error, Equatable, Sendable {
    case missing
    /// The queue holds `limit` messages already.
    case full(limit: Int)
}

/// Queues with pgmq's semantics in the control plane: ids increase per queue, a read hides what
/// it returns until its visibility timeout ends, archive keeps a message out of reads for good.
/// Every operation on a queue that does not exist throws `QueueStoreError.missing`.
public protocol QueueStore: Sendable {
    /// Throws `ControlPlaneError.duplicate` when it exists.
    func createQueue(tenant: String, name: String, at: Date) async throws
    func queueMetrics(tenant: String, now: Date) async throws -> [QueueMetrics]
    func dropQueue(tenant: String, name: String) async throws -> Bool
    /// Deletes every message; answers how many.
    func purgeQueue(tenant: String, name: String) async throws -> Int
    /// Stores the messages (JSON texts), visible after `delay`; their ids in order.
    func send(tenant: String, queue: String, messages: [String], delay: TimeInterval, maxLength: Int, now: Date) async throws -> [Int64]
    /// Up to `limit` visible messages, oldest first, hidden for `visibility` from `now`.
    func read(tenant: String, queue: String, visibility: TimeInterval, limit: Int, now: Date) async throws -> [QueueMessage]
    /// The oldest visible message, deleted as it is read.
    func pop(tenant: String, queue: String, now: Date) async throws -> [QueueMessage]
    func archive(tenant: String, queue: String, id: Int64, at: Date) async throws -> Bool
    func deleteMessage(tenant: String, queue: String, id: Int64) async throws -> Bool
}
