import Connectors
import Foundation
import Runtime

/// The limits and switches a tenant sets for its GraphQL API (`/admin/v1/tenants/{slug}/graphql`).
public struct GraphQLOptions: Sendable {
    public var maxRows: Int
    public var maxDepth: Int
    public var maxCost: Int
    /// Introspection for this caller (always for the service role).
    public var introspection: Bool

    public init(maxRows: Int = 30, maxDepth: Int = 20, maxCost: Int = 50_000, introspection: Bool = false) {
        self.maxRows = maxRows
        self.maxDepth = maxDepth
        self.maxCost = maxCost
        self.introspection = introspection
    }
}

/// A GraphQL answer: `data` (null when anything failed: nothing is kept of a failed request) and
/// `errors`.
public struct GraphQLResponse: Sendable {
    /// `data` as JSON, written straight from the rows; nil is null.
    public var data: [UInt8]?
    public var errors: [GraphQLError]
    /// Whether a mutation ran (cached reads of the source are stale).
    public var wrote: Bool = false
    /// Whether the answer depends on the schema alone (introspection, `__typename`): it can be
    /// kept for the next identical request.
    public var fromSchemaAlone: Bool = false

    public var isRequestError: Bool { errors.contains { $0.isRequestError } }

    /// The answer as the HTTP body: `{"data": …, "errors": […]}`.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((data?.count ?? 4) + 16)
        out.append(contentsOf: #"{"data":"#.utf8)
        out.append(contentsOf: data ?? Array("null".utf8))
        if !errors.isEmpty {
            out.append(contentsOf: #","errors":"#.utf8)
            JSONValue.array(errors.map(\.json)).write(into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func failed(_ error: GraphQLError) -> GraphQLResponse {
        GraphQLResponse(data: nil, errors: [error])
    }
}

/// Runs one operation of a document against a source, for one role: fields are checked against
/// the role's schema while they are lowered to REST plans (`RestPlanner` applies the policies,
/// the source renders each plan as one statement), and the rows are shaped into the answer.
public struct GraphQLExecutor: Sendable {
    /// Called after each write with what the REST API does after its own: drop cached reads,
    /// publish rows to realtime.
    public typealias WriteObserver = @Sendable (_ plan: WritePlan, _ result: StatementResult, _ operation: RestWriteChanges.Operation) async -> Void

    public let schema: RoleSchema
    public let source: any DatabaseSource
    public let planner: RestPlanner
    public let options: GraphQLOptions
    /// Whether writes should answer their rows for realtime (sources without change capture).
    public let publishWrites: Bool
    public let onWrite: WriteObserver?

    public init(
        schema: RoleSchema, source: any DatabaseSource, access: Access, options: GraphQLOptions, publishWrites: Bool = false,
        onWrite: WriteObserver? = nil
    ) {
        self.schema = schema
        self.source = source
        self.planner = RestPlanner(model: source.model, access: access)
        self.options = options
        self.publishWrites = publishWrites
        self.onWrite = onWrite
    }

    /// The operation a request runs: the named one, or the only one.
    public static func operation(in document: GraphQLDocument, named name: String?) throws(GraphQLError) -> OperationDefinition {
        if let name, !name.isEmpty {
            guard let found = document.operations.first(where: { $0.name == name }) else {
                throw .operation("Unknown operation named \"\(name)\".")
            }
            return found
        }
        guard document.operations.count == 1 else {
            throw .operation(document.operations.isEmpty ? "The document contains no operation." : "Must provide operation name if query contains multiple operations.")
        }
        return document.operations[0]
    }

    /// `text`: the document's text, when the caller has it: a query's plan is then compiled once
    /// per shape and kept with the schema (`OperationPlanCache`).
    public func execute(_ document: GraphQLDocument, text: String? = nil, operationName: String?, variables: JSONObject) async -> GraphQLResponse {
        let plan: OperationPlan
        do throws(GraphQLError) {
            let operation = try Self.operation(in: document, named: operationName)
            if operation.kind == .subscription {
                throw GraphQLError("Subscriptions are not supported; use realtime (postgres_changes) for live data.", code: "MB727")
            }
            try FieldCollector.checkFragmentCycles(document)
            let coerced = try InputCoercion.variables(operation.variables, given: variables, schema: schema)
            if let text, operation.kind == .query, text.utf8.count <= OperationPlanCache.maxDocumentBytes {
                plan = try Self.cachedPlan(schema: schema, options: options, document, text: text, operation: operation, variables: coerced)
            } else {
                plan = try Self.compile(schema: schema, options: options, document, operation, variables: coerced)
            }
        } catch {
            return .failed(error)
        }
        return await run(plan)
    }

    static func compile(schema: RoleSchema, options: GraphQLOptions, _ document: GraphQLDocument, _ operation: OperationDefinition, variables: JSONObject) throws(GraphQLError) -> OperationPlan {
        var compiler = OperationCompiler(
            schema: schema, options: options, collector: FieldCollector(
                document: document,
                inputs: InputCoercion(schema: schema, variables: variables, declared: Dictionary(operation.variables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }))))
        return try compiler.compile(operation)
    }

    /// The plan from the schema's cache, compiled with placeholders for the compared values on
    /// first use of a shape.
    static func cachedPlan(
        schema: RoleSchema, options: GraphQLOptions, _ document: GraphQLDocument, text: String, operation: OperationDefinition, variables: JSONObject
    ) throws(GraphQLError) -> OperationPlan {
        let cache = schema.plans
        let bindable = cache.bindableVariables(document: text, operation: operation, in: document)
        var withPlaceholders = variables, confirming = variables
        var placeholders: [String: String] = [:], confirmingPlaceholders: [String: String] = [:]
        var shaping = JSONObject()
        for (index, name) in variables.keys.sorted().enumerated() {
            let value = variables[name] ?? .null
            if bindable.contains(name), index < 1000, let placeholder = PlanVariables.placeholder(for: value, index: index),
                let other = PlanVariables.placeholder(for: value, index: index + 1000)
            {
                withPlaceholders[name] = placeholder
                placeholders[OperationCompiler.text(placeholder)] = name
                confirming[name] = other
                confirmingPlaceholders[OperationCompiler.text(other)] = name
            } else {
                shaping[name] = value
            }
        }
        let shapingText = JSONValue.object(shaping).jsonString
        let key = "\(options.maxRows)/\(options.maxDepth)/\(options.maxCost)/\(options.introspection)\u{0}\(operation.name ?? "")\u{0}"
            + "\(placeholders.values.sorted().joined(separator: ","))\u{0}\(shapingText)\u{0}\(text)"
        switch cache.entry(key) {
        case .template(let template, let slots)?:
            return template.filling(slots, from: variables)
        case .uncacheable?:
            return try compile(schema: schema, options: options, document, operation, variables: variables)
        case nil:
            guard !PlanVariables.mayHoldPlaceholder(text), !PlanVariables.mayHoldPlaceholder(shapingText),
                let template = try? compile(schema: schema, options: options, document, operation, variables: withPlaceholders),
                let slots = template.slots(for: placeholders),
                let confirmation = try? compile(schema: schema, options: options, document, operation, variables: confirming),
                template.placesPlaceholders(placeholders, like: confirmation, confirmingPlaceholders)
            else {
                cache.store(.uncacheable, key: key)
                return try compile(schema: schema, options: options, document, operation, variables: variables)
            }
            cache.store(.template(template, slots: slots), key: key)
            return template.filling(slots, from: variables)
        }
    }

    // MARK: - Running a compiled operation

    func run(_ plan: OperationPlan) async -> GraphQLResponse {
        if plan.isMutation { return await runMutation(plan) }
        var wrote = false
        // A query's reads go to the source together: one statement (one snapshot) where it can.
        var answers: [String: (rows: [JSONValue], total: Int?)] = [:]
        var planning: String?
        do {
            var reads: [(key: String, plan: ReadPlan, count: Bool)] = []
            for root in plan.roots {
                planning = root.key
                switch root {
                case .collection(let key, let entity, let query, _, let countQuery):
                    reads.append((key, try planner.read(entity, query), false))
                    if let countQuery { reads.append(("\u{0}" + key, try planner.read(entity, countQuery), true)) }
                case .single(let key, let entity, let query, _):
                    reads.append((key, try planner.read(entity, query), false))
                default: break
                }
            }
            planning = nil
            if !reads.isEmpty {
                let results = try await source.readAll(reads.map { (plan: $0.plan, count: $0.count) })
                for (read, result) in zip(reads, results) { answers[read.key] = result }
            }
        } catch {
            return GraphQLResponse(data: nil, errors: [Self.failure(error, key: planning)])
        }
        // The answer is written straight from the rows into one buffer (no answer tree).
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(1024)
        let writer = AnswerWriter()
        for (index, root) in plan.roots.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            writer.key(root.key, into: &out)
            do {
                switch root {
                case .constant(_, let value):
                    value.write(into: &out)
                case .collection(let key, _, _, let shape, _):
                    shape.write(rows: answers[key]?.rows ?? [], total: answers["\u{0}" + key]?.total, into: &out)
                case .single(let key, _, _, let node):
                    if let row = answers[key]?.rows.first?.objectValue {
                        ConnectionShape.writeNode(row, node, into: &out)
                    } else {
                        out.append(contentsOf: "null".utf8)
                    }
                case .call(_, let operation, let arguments, let query, let answer):
                    let plan = try Self.callPlan(planner, operation, arguments, query, answer)
                    let result = try await source.call(plan, rollback: false)
                    // A volatile function may have written anything.
                    if operation.volatility == .volatile { wrote = true }
                    try Self.writeCallAnswer(result, answer, into: &out)
                case .write:
                    // Mutations run in `runMutation`.
                    out.append(contentsOf: "null".utf8)
                }
            } catch {
                return GraphQLResponse(data: nil, errors: [Self.failure(error, key: root.key)], wrote: wrote)
            }
        }
        out.append(UInt8(ascii: "}"))
        let constant = plan.roots.allSatisfy { if case .constant = $0 { true } else { false } }
        return GraphQLResponse(data: out, errors: [], wrote: wrote, fromSchemaAlone: constant)
    }

    /// A mutation's fields as one transaction: every write and function call commits together,
    /// and any failure answers `data: null` with nothing kept (as pg_graphql). What a write does
    /// after the REST API's writes (dropping cached reads, publishing to realtime) follows the commit.
    func runMutation(_ plan: OperationPlan) async -> GraphQLResponse {
        var steps: [TransactionStep] = []
        var stepKeys: [String] = []
        var writes: [Int: (plan: WritePlan, operation: RestWriteChanges.Operation)] = [:]
        for root in plan.roots {
            do {
                switch root {
                case .constant: continue
                case .write(_, let write):
                    let (written, operation) = try write.plan(planner)
                    writes[steps.count] = (written, operation)
                    steps.append(.write(written, publishRows: publishWrites, expecting: write.expecting))
                case .call(_, let operation, let arguments, let query, let answer):
                    steps.append(.call(try Self.callPlan(planner, operation, arguments, query, answer)))
                case .collection, .single:
                    throw GraphQLError("a mutation's fields are writes and functions", code: "MB721")
                }
                stepKeys.append(root.key)
            } catch {
                return .failed(Self.failure(error, key: root.key))
            }
        }
        let results: [StatementResult]
        do {
            results = try await source.transaction(steps)
        } catch let failure as TransactionStepFailure {
            // On a source without transactions the earlier steps' changes stay: they are
            // published and drop cached reads as any write does.
            for (index, result) in failure.completed.enumerated() {
                if let write = writes[index] { await onWrite?(write.plan, result, write.operation) }
            }
            return GraphQLResponse(data: nil, errors: [Self.failure(failure.error, key: stepKeys[failure.index])], wrote: !failure.completed.isEmpty)
        } catch {
            return GraphQLResponse(data: nil, errors: [Self.failure(error, key: nil)], wrote: false)
        }
        for (index, result) in results.enumerated() {
            if let write = writes[index] { await onWrite?(write.plan, result, write.operation) }
        }
        var out: [UInt8] = [UInt8(ascii: "{")]
        let writer = AnswerWriter()
        var stepIndex = 0
        for (index, root) in plan.roots.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            writer.key(root.key, into: &out)
            do {
                switch root {
                case .constant(_, let value):
                    value.write(into: &out)
                case .write(_, let write):
                    let result = results[stepIndex]
                    stepIndex += 1
                    write.write(rows: try Self.rows(result.body), count: result.count, into: &out)
                case .call(_, _, _, _, let answer):
                    let result = results[stepIndex]
                    stepIndex += 1
                    try Self.writeCallAnswer(result, answer, into: &out)
                case .collection, .single:
                    // Refused while planning the steps above.
                    out.append(contentsOf: "null".utf8)
                }
            } catch {
                return GraphQLResponse(data: nil, errors: [Self.failure(error, key: root.key)], wrote: true)
            }
        }
        out.append(UInt8(ascii: "}"))
        return GraphQLResponse(data: out, errors: [], wrote: true)
    }

    /// A function's call; a connection that selects `totalCount` has every row counted.
    static func callPlan(
        _ planner: RestPlanner, _ operation: Connectors.Operation, _ arguments: [(String, JSONValue)], _ query: RestQuery, _ answer: OperationPlan.CallAnswer
    ) throws(RestError) -> CallPlan {
        var plan = try planner.call(operation.name, arguments: arguments, query: query)
        if case .connection(let shape) = answer, shape.items.contains(where: { if case .totalCount = $0 { true } else { false } }) {
            plan.countsRows = true
        }
        return plan
    }

    /// A function's result, shaped as its field asks.
    static func writeCallAnswer(_ result: StatementResult, _ answer: OperationPlan.CallAnswer, into out: inout [UInt8]) throws {
        let value = try result.body.map { try JSONValue.parse(Array($0.utf8)) } ?? .null
        switch answer {
        case .connection(let shape):
            shape.write(rows: value.arrayValue ?? [], total: result.total, into: &out)
        case .node(let items):
            if let row = value.objectValue {
                ConnectionShape.writeNode(row, items, into: &out)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .value(let format):
            format.apply(value).write(into: &out)
        }
    }

    /// An error while running, as a GraphQL error at the root field it came from (when known).
    static func failure(_ error: any Error, key: String?) -> GraphQLError {
        let path: [GraphQLError.PathComponent] = key.map { [.key($0)] } ?? []
        switch error {
        case let error as RestError:
            var failure = GraphQLError(error.message, code: error.code, path: path, isRequestError: false)
            if let details = error.details, error.code == "MB729" || error.code == "42501" { failure.message += " (\(details))" }
            return failure
        case var error as GraphQLError:
            error.path = path
            return error
        default:
            return GraphQLError("the source failed: \(error)", code: "MB500", path: path, isRequestError: false)
        }
    }

    static func rows(_ body: String?) throws -> [JSONValue] {
        guard let body, !body.isEmpty else { return [] }
        return try JSONValue.parse(Array(body.utf8)).arrayValue ?? []
    }
}

/// A compiled operation: what each root field runs and how its answer is shaped.
struct OperationPlan: Sendable {
    enum Root: Sendable {
        case constant(key: String, JSONValue)
        case collection(key: String, entity: String, query: RestQuery, shape: ConnectionShape, countQuery: RestQuery?)
        case single(key: String, entity: String, query: RestQuery, node: [NodeItem])
        case write(key: String, MutationPlan)
        case call(key: String, operation: Connectors.Operation, arguments: [(String, JSONValue)], query: RestQuery, answer: CallAnswer)

        var key: String {
            switch self {
            case .constant(let key, _), .collection(let key, _, _, _, _), .single(let key, _, _, _), .write(let key, _), .call(let key, _, _, _, _): key
            }
        }
    }

    /// What a function's result becomes: a page of rows, one row, or a value.
    enum CallAnswer: Sendable {
        case connection(ConnectionShape)
        case node([NodeItem])
        case value(ValueFormat)
    }

    var roots: [Root]
    /// A mutation's fields run in one transaction, in document order.
    var isMutation: Bool = false
}

/// One mutation field: the write it plans and the answer it shapes.
struct MutationPlan: Sendable {
    enum Kind: Sendable {
        case insert(rows: [JSONObject])
        case update(values: JSONObject, conditions: [Condition])
        case delete(conditions: [Condition])
    }

    var entity: String
    var kind: Kind
    var records: [SelectItem]
    var expecting: WrittenRows
    var answerItems: [(key: String, item: AnswerItem)]

    enum AnswerItem: Sendable {
        case typename(String)
        case affectedCount
        case records([NodeItem])
    }

    func plan(_ planner: RestPlanner) throws(RestError) -> (WritePlan, RestWriteChanges.Operation) {
        let returning = RestQuery(select: records)
        switch kind {
        case .insert(let rows):
            return (try planner.insert(entity, rows: rows, query: returning, onConflict: nil, missingDefault: true), .insert)
        case .update(let values, let conditions):
            var query = returning
            query.conditions[[]] = conditions
            return (try planner.update(entity, values: values, query: query), .update)
        case .delete(let conditions):
            var query = returning
            query.conditions[[]] = conditions
            return (try planner.delete(entity, query: query), .delete)
        }
    }

    /// Writes the field's answer: `affectedCount`, the written `records` as the selection asks.
    func write(rows: [JSONValue], count: Int, into out: inout [UInt8]) {
        let writer = AnswerWriter()
        out.append(UInt8(ascii: "{"))
        for (index, (key, item)) in answerItems.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            switch item {
            case .typename(let name): writer.pair(key, .string(name), into: &out)
            case .affectedCount: writer.pair(key, .integer(Int64(count)), into: &out)
            case .records(let node):
                writer.key(key, into: &out)
                out.append(UInt8(ascii: "["))
                for (position, row) in rows.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    ConnectionShape.writeNode(row.objectValue ?? [:], node, into: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        out.append(UInt8(ascii: "}"))
    }
}
