import Runtime

/// A source served by statements on a database — PostgreSQL (introspected, provisioned, or an
/// upload over a database) or SQLite (hosted tables, or a registered file). The REST API, the
/// OpenAPI document and realtime's policy checks work through this protocol alone: each kind
/// renders the same plans in its own dialect.
public protocol DatabaseSource: DataSource {
    /// Whether the database can hand over its own committed changes (PostgreSQL's logical
    /// decoding). Where it cannot, the REST API publishes its own writes to realtime.
    var canCaptureChanges: Bool { get }
    /// The source's life as a supervised child of the tenant's tree (its pool or connections).
    func runPool() async
    func read(_ plan: ReadPlan, count: Bool) async throws -> StatementResult
    /// The row estimate for `count=planned|estimated`.
    func estimate(_ plan: ReadPlan) async throws -> Int
    /// `rollback`: `Prefer: tx=rollback`; `rows`: how many rows the write may touch before it is undone
    /// (a singular answer: exactly one, PGRST116; GraphQL's `atMost`).
    func write(_ plan: WritePlan, returnRows: Bool, publishRows: Bool, rollback: Bool, expecting rows: WrittenRows) async throws -> StatementResult
    func call(_ plan: CallPlan, rollback: Bool) async throws -> StatementResult
    /// Several reads, answered together: each read's rows and, when asked, its count. PostgreSQL
    /// runs them as one statement (one snapshot); other dialects one after the other.
    func readAll(_ reads: [(plan: ReadPlan, count: Bool)]) async throws -> [(rows: [JSONValue], total: Int?)]
    /// Steps that commit together or not at all (a GraphQL mutation's fields, in order). A step
    /// that fails is thrown as a `TransactionStepFailure` naming it; then no step's change stays.
    func transaction(_ steps: [TransactionStep]) async throws -> [StatementResult]
    /// Row rules decided against row images (realtime deliveries), one answer per check.
    func decide(_ checks: [(rule: RowRule, row: Int)], rows: [(entity: Entity, values: JSONObject)]) async throws -> [Bool]
}

/// One step of a `transaction`: a write (answering its rows) or a function call.
public enum TransactionStep: Sendable {
    case write(WritePlan, publishRows: Bool, expecting: WrittenRows)
    case call(CallPlan)
}

/// The step of a `transaction` that failed, and why. Where the source has transactions nothing
/// stayed; where it has none, `completed` holds the results of the steps before it, which did.
public struct TransactionStepFailure: Error {
    public let index: Int
    public let error: any Error
    public var completed: [StatementResult] = []
}

/// Returns once the calling task is cancelled: the life of a source's supervised child that has
/// nothing to do until it is stopped.
func untilCancelled() async {
    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
}

extension DatabaseSource {
    public func readAll(_ reads: [(plan: ReadPlan, count: Bool)]) async throws -> [(rows: [JSONValue], total: Int?)] {
        var answers: [(rows: [JSONValue], total: Int?)] = []
        for read in reads {
            let result = try await self.read(read.plan, count: read.count)
            answers.append((try JSONValue.parse(Array((result.body ?? "[]").utf8)).arrayValue ?? [], result.total))
        }
        return answers
    }
}

extension DatabaseSource {
    /// Where the database has no transaction across statements here (MongoDB without a replica
    /// set): the steps run one after the other, and a failure leaves the earlier steps' changes.
    public func transaction(_ steps: [TransactionStep]) async throws -> [StatementResult] {
        var results: [StatementResult] = []
        for (index, step) in steps.enumerated() {
            do {
                switch step {
                case .write(let plan, let publishRows, let expecting):
                    results.append(try await write(plan, returnRows: true, publishRows: publishRows, rollback: false, expecting: expecting))
                case .call(let plan):
                    results.append(try await call(plan, rollback: false))
                }
            } catch {
                throw TransactionStepFailure(index: index, error: error, completed: results)
            }
        }
        return results
    }
}

extension PostgresSource: DatabaseSource {
    public var canCaptureChanges: Bool { true }

    /// At most this many reads share a statement (`json_build_array` takes 100 arguments, two per read).
    static let readsPerStatement = 50

    public func readAll(_ reads: [(plan: ReadPlan, count: Bool)]) async throws -> [(rows: [JSONValue], total: Int?)] {
        var answers: [(rows: [JSONValue], total: Int?)] = []
        var start = 0
        while start < reads.count {
            let chunk = Array(reads[start..<min(start + Self.readsPerStatement, reads.count)])
            let result = try await execute(SQLRenderer().readAll(chunk))
            let pairs = try JSONValue.parse(Array((result.body ?? "[]").utf8)).arrayValue ?? []
            for index in chunk.indices {
                let rows = pairs.count > 2 * index ? pairs[2 * index].arrayValue ?? [] : []
                let total = pairs.count > 2 * index + 1 ? pairs[2 * index + 1].intValue.map(Int.init) : nil
                answers.append((rows, total))
            }
            start += Self.readsPerStatement
        }
        return answers
    }

    public func read(_ plan: ReadPlan, count: Bool) async throws -> StatementResult {
        try await execute(SQLRenderer().read(plan, count: count))
    }

    public func estimate(_ plan: ReadPlan) async throws -> Int {
        try await estimate(SQLRenderer().estimate(plan))
    }

    public func write(_ plan: WritePlan, returnRows: Bool, publishRows: Bool, rollback: Bool, expecting rows: WrittenRows) async throws -> StatementResult {
        try await execute(SQLRenderer().write(plan, returnRows: returnRows, publishRows: publishRows), rollback: rollback, expecting: rows)
    }

    public func call(_ plan: CallPlan, rollback: Bool) async throws -> StatementResult {
        try await execute(SQLRenderer().call(plan, count: plan.countsRows), rollback: rollback)
    }

    public func transaction(_ steps: [TransactionStep]) async throws -> [StatementResult] {
        try await executeAll(steps.map { step in
            switch step {
            case .write(let plan, let publishRows, let expecting):
                (SQLRenderer().write(plan, returnRows: true, publishRows: publishRows), expecting)
            case .call(let plan):
                (SQLRenderer().call(plan, count: plan.countsRows), .any)
            }
        })
    }

    public func decide(_ checks: [(rule: RowRule, row: Int)], rows: [(entity: Entity, values: JSONObject)]) async throws -> [Bool] {
        let result = try await execute(SQLRenderer().decide(checks, rows: rows))
        return (try JSONValue.parse(Array((result.body ?? "[]").utf8)).arrayValue ?? []).map { $0.boolValue == true }
    }
}

extension SQLiteSource: DatabaseSource {
    public var serving: SourceServing { .database }
    public var canCaptureChanges: Bool { false }

    public func call(_ plan: CallPlan, rollback: Bool) async throws -> StatementResult {
        throw Self.noFunction(plan)
    }

    static func noFunction(_ plan: CallPlan) -> RestError {
        RestError(
            status: 404, code: "PGRST202", message: "Could not find the function '\(plan.operation.name)' in the schema cache",
            hint: "a SQLite-hosted source has no functions")
    }
}
