import Foundation
import NIOConcurrencyHelpers
import Runtime

/// Meilisearch's asynchronous tasks, as its clients poll them: every change to an index is a
/// task with a uid, enqueued, processed and settled. Kept per tenant in the owner's memory (the
/// newest 1,000): the changes themselves are durable in the control plane before a task is
/// answered; a task's record is only the receipt.
public final class SearchTasks: Sendable {
    public enum Status: String, Sendable { case enqueued, processing, succeeded, failed, canceled }

    public struct Task: Sendable {
        public let uid: Int
        public let indexUid: String?
        public var status: Status
        public let type: String
        public var details: JSONObject
        public var error: SearchError?
        public let enqueuedAt: Date
        public var startedAt: Date?
        public var finishedAt: Date?
    }

    private let state = NIOLockedValueBox((next: 0, tasks: [Task]()))
    static let kept = 1_000

    public init() {}

    /// A new task, already processing (the work starts as the answer goes out).
    public func enqueue(indexUid: String?, type: String, details: JSONObject = [:]) -> Task {
        state.withLockedValue { state in
            let now = Date()
            let task = Task(uid: state.next, indexUid: indexUid, status: .processing, type: type, details: details, enqueuedAt: now, startedAt: now)
            state.next += 1
            state.tasks.append(task)
            if state.tasks.count > Self.kept { state.tasks.removeFirst(state.tasks.count - Self.kept) }
            return task
        }
    }

    public func finish(_ uid: Int, error: SearchError? = nil, details: JSONObject? = nil) {
        state.withLockedValue { state in
            guard let position = state.tasks.firstIndex(where: { $0.uid == uid }) else { return }
            state.tasks[position].status = error == nil ? .succeeded : .failed
            state.tasks[position].error = error
            state.tasks[position].finishedAt = Date()
            if let details { state.tasks[position].details = details }
        }
    }

    public func task(_ uid: Int) -> Task? { state.withLockedValue { $0.tasks.first { $0.uid == uid } } }

    /// Newest first, filtered as `GET /tasks` asks.
    public func list(indexUids: Set<String>?, statuses: Set<String>?, types: Set<String>?, uids: Set<Int>?, from: Int?, limit: Int)
        -> (tasks: [Task], total: Int, next: Int?)
    {
        state.withLockedValue { state in
            let matching = state.tasks.reversed().filter { task in
                (indexUids.map { task.indexUid.map($0.contains) ?? false } ?? true) && (statuses?.contains(task.status.rawValue) ?? true)
                    && (types?.contains(task.type) ?? true) && (uids?.contains(task.uid) ?? true)
            }
            let page = matching.filter { from == nil || $0.uid <= from! }
            let shown = Array(page.prefix(limit))
            return (shown, matching.count, page.count > limit ? page[limit].uid : nil)
        }
    }

    /// Meilisearch's answer to a write: 202 with this.
    public static func summary(_ task: Task) -> JSONObject {
        ["taskUid": .integer(Int64(task.uid)), "indexUid": task.indexUid.map(JSONValue.string) ?? .null, "status": "enqueued",
         "type": .string(task.type), "enqueuedAt": .string(timestamp(task.enqueuedAt))]
    }

    public static func json(_ task: Task) -> JSONObject {
        var error: JSONValue = .null
        if let failure = task.error {
            error = ["message": .string(failure.message), "code": .string(failure.code), "type": .string(failure.kind.rawValue), "link": .string(failure.link)]
        }
        let duration = task.finishedAt.flatMap { end in task.startedAt.map { end.timeIntervalSince($0) } }
        return [
            "uid": .integer(Int64(task.uid)), "batchUid": .integer(Int64(task.uid)), "indexUid": task.indexUid.map(JSONValue.string) ?? .null,
            "status": .string(task.status.rawValue), "type": .string(task.type), "canceledBy": .null, "details": .object(task.details),
            "error": error, "duration": duration.map { .string(String(format: "PT%.6fS", $0)) } ?? .null,
            "enqueuedAt": .string(timestamp(task.enqueuedAt)), "startedAt": task.startedAt.map { .string(timestamp($0)) } ?? .null,
            "finishedAt": task.finishedAt.map { .string(timestamp($0)) } ?? .null,
        ]
    }

    /// RFC 3339 with microseconds: the Python client's model refuses timestamps without a fraction.
    public static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = floor(seconds)
        let micros = Int((seconds - whole) * 1_000_000)
        var parts = tm()
        var time = time_t(whole)
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec), micros)
    }
}
