import Connectors
import Foundation
import Logging
import Metrics
import Runtime
import Tenancy

/// The fan-out of changes: REST-written changes queued in order, and every change delivered to the
/// members whose bindings match it and whose policies let them see it.
extension RealtimeHub {
    /// Rows written through the REST API to a source whose changes cannot be captured: queued
    /// for `publishQueuedWrites`, so the writer's response does not wait for the fan-out.
    public nonisolated func publishWrites(source: String, entity: Entity, operation: RestWriteChanges.Operation, rows: String) {
        let events = RestWriteChanges.events(rows: rows, entity: entity, operation: operation)
        guard !events.isEmpty else { return }
        guard queuedChanges.reserve(events.count) else {
            return logger.warning("realtime: too many REST-written changes waiting to be published; these were not",
                                  metadata: ["source": .string(source), "changes": .stringConvertible(events.count)])
        }
        if case .dropped = writeQueue.yield((source, events)) {
            queuedChanges.release(events.count)
            logger.warning("realtime: too many REST writes waiting to be published; some were not", metadata: ["source": .string(source)])
        }
    }

    /// Publishes queued REST writes one batch after another, until the tree stops.
    func publishQueuedWrites() async {
        for await batch in writes {
            await dispatch(source: batch.source, batch.events)
            queuedChanges.release(batch.events.count)
        }
    }

    final class QueuedChanges: @unchecked Sendable {
        private let lock = Lock()
        private var count = 0
        private let limit: Int
        init(limit: Int) { self.limit = limit }
        func reserve(_ changes: Int) -> Bool {
            lock.withLock {
                guard count + changes <= limit else { return false }
                count += changes
                return true
            }
        }
        func release(_ changes: Int) { lock.withLock { count -= changes } }
    }

    /// One change's possible receivers, before the policies' verdicts.
    private struct Delivery {
        let change: ChangeEvent
        /// Per member of a channel, the bindings the change matches.
        var targets: [(topic: String, session: RealtimeSession, bindings: [ChangeBinding])] = []
        /// One authorizer per audience (role, claims, columns).
        var deciders: [String: ChangeAuthorizer] = [:]
    }

    /// Delivers each change to the members whose bindings match it and whose policies let them
    /// see it. Bindings with the same audience (role, claims, columns) share one decision and one
    /// encoded payload; a member whose bindings see different payloads gets one message each.
    /// What policies leave to the database (conditions through relations) is asked for the whole
    /// batch of changes and every audience at once (`databaseAnswers`).
    func dispatch(source: String, _ changes: [ChangeEvent]) async {
        for sink in changeSinks.values { await sink(source, changes) }
        // The same feed keeps the tenant's read cache honest.
        if !changes.isEmpty { await cache.dropReads(of: source, waitingForSharedTier: false) }
        // In chunks, so what is held across the database's answer stays bounded.
        for start in stride(from: 0, to: changes.count, by: 100) {
            await dispatchChunk(source: source, changes[start..<min(start + 100, changes.count)])
        }
    }

    private func dispatchChunk(source: String, _ changes: ArraySlice<ChangeEvent>) async {
        var deliveries: [Delivery] = []
        for change in changes {
            var delivery = Delivery(change: change)
            for (topic, members) in state.channels {
                for member in members.values {
                    if member.session.tokenExpired {
                        if expiredNotified.insert(member.session.id).inserted {
                            notify(member.session, topic: topic, ok: false, "InvalidJWTToken: Token has expired; send a fresh access_token")
                        }
                        continue
                    }
                    var matched: [ChangeBinding] = []
                    for (index, binding) in member.bindings.enumerated() where binding.matches(change, source: source) {
                        guard let authorizer = authorizer(for: binding, change: change, member: member, topic: topic, index: index) else { continue }
                        delivery.deciders[binding.audience] = authorizer
                        matched.append(binding)
                    }
                    if !matched.isEmpty { delivery.targets.append((topic, member.session, matched)) }
                }
            }
            if !delivery.targets.isEmpty { deliveries.append(delivery) }
        }
        guard !deliveries.isEmpty else { return }
        let (answers, waited) = await databaseAnswers(deliveries, source: source)
        for (number, delivery) in deliveries.enumerated() {
            var encodedByAudience: [String: String] = [:]
            for (audience, authorizer) in delivery.deciders {
                let verdict = authorizer.verdict(for: delivery.change, answers: answers[number]?[audience] ?? [:])
                if case .deliver(let record, let old) = verdict {
                    encodedByAudience[audience] = Self.encodeData(delivery.change, record: record, old: old)
                }
            }
            // One message per member and distinct payload, naming every binding it satisfies.
            for target in delivery.targets {
                var idsByPayload: [String: [Int]] = [:]
                for binding in target.bindings {
                    guard let encoded = encodedByAudience[binding.audience] else { continue }
                    // The database was asked meanwhile: only bindings still held, by the same
                    // caller, with a live token.
                    if waited {
                        guard let member = state.member(target.topic, session: target.session.id), !member.session.tokenExpired,
                            member.bindings.contains(where: { $0.id == binding.id && $0.audience == binding.audience })
                        else { continue }
                    }
                    idsByPayload[encoded, default: []].append(binding.id)
                }
                for (data, ids) in idsByPayload {
                    target.session.send(wire.changes(topic: target.topic, ids: ids, data: data), topic: target.topic)
                    delivered.increment()
                }
            }
        }
    }

    /// Questions for one statement: row images, and checks (a rule over an image) with who asked.
    private struct DecisionBatch {
        var rows: [(entity: Entity, values: JSONObject)] = []
        var rowIndex: [String: Int] = [:]
        var checks: [(rule: RowRule, row: Int)] = []
        var checkIndex: [String: Int] = [:]
        var askers: [[(delivery: Int, audience: String, side: ChangeAuthorizer.Side)]] = []
        var isFull: Bool { rows.count >= 100 || checks.count >= 400 }
    }

    /// The database's decisions on what the audiences' policies cannot decide in process: by
    /// delivery (its index), audience and image. Questions with the same rule and row are asked
    /// once; a statement holds at most 100 row images and 400 questions. What fails is not
    /// decided: withheld.
    /// `asked`: whether the database was asked at all (the actor was suspended meanwhile, so
    /// deliveries must be checked against who is still subscribed), even when it failed.
    private func databaseAnswers(
        _ deliveries: [Delivery], source: String
    ) async -> (answers: [Int: [String: [ChangeAuthorizer.Side: Bool]]], asked: Bool) {
        guard let database = data.sources.database(named: source) else { return ([:], false) }
        var answers: [Int: [String: [ChangeAuthorizer.Side: Bool]]] = [:]
        var asked = false
        var batch = DecisionBatch()
        for (number, delivery) in deliveries.enumerated() {
            let change = delivery.change
            guard let entity = database.model.entities.first(where: { $0.schema == change.schema && $0.name == change.table }) else { continue }
            for (audience, authorizer) in delivery.deciders {
                guard let rule = authorizer.rows else { continue }
                for side in authorizer.questions(for: change) {
                    if batch.isFull {
                        asked = true
                        await ask(batch, database: database, into: &answers)
                        batch = DecisionBatch()
                    }
                    let rowKey = "\(number)\u{0}\(side.rawValue)"
                    let row: Int
                    if let known = batch.rowIndex[rowKey] {
                        row = known
                    } else {
                        row = batch.rows.count
                        batch.rows.append((entity, side == .new ? change.record : change.oldRecord))
                        batch.rowIndex[rowKey] = row
                    }
                    let checkKey = "\(row)\u{0}\(authorizer.ruleKey)"
                    if let known = batch.checkIndex[checkKey] {
                        batch.askers[known].append((number, audience, side))
                    } else {
                        batch.checkIndex[checkKey] = batch.checks.count
                        batch.checks.append((rule, row))
                        batch.askers.append([(number, audience, side)])
                    }
                }
            }
        }
        if !batch.checks.isEmpty {
            asked = true
            await ask(batch, database: database, into: &answers)
        }
        return (answers, asked)
    }

    private func ask(
        _ batch: DecisionBatch, database: any DatabaseSource, into answers: inout [Int: [String: [ChangeAuthorizer.Side: Bool]]]
    ) async {
        guard !batch.checks.isEmpty else { return }
        do {
            let decisions = try await database.decide(batch.checks, rows: batch.rows)
            for (index, group) in batch.askers.enumerated() {
                let visible = index < decisions.count && decisions[index]
                for asker in group { answers[asker.delivery, default: [:]][asker.audience, default: [:]][asker.side] = visible }
            }
        } catch {
            logger.warning("policy decision through the database failed; changes withheld", metadata: [
                "source": .string(database.name), "error": .string("\(error)"),
            ])
        }
    }

    /// The binding's authorizer for the change's table, built on first use for schema-wide
    /// bindings (service role only).
    private func authorizer(
        for binding: ChangeBinding, change: ChangeEvent, member: ChannelState.Member, topic: String, index: Int
    ) -> ChangeAuthorizer? {
        if let known = binding.authorizers[change.table] { return known }
        guard let source = data.sources.database(named: binding.source),
            let entity = source.model.entities.first(where: { $0.schema == change.schema && $0.name == change.table })
        else { return nil }
        let made = try? ChangeAuthorizer(model: source.model, entity: entity, access: access(for: member.session.caller), select: binding.select, filterColumns: [])
        state.cacheAuthorizer(made, table: change.table, topic: topic, session: member.session.id, binding: index)
        return made
    }

    static func encodeData(_ change: ChangeEvent, record: JSONObject, old: JSONObject) -> String {
        // Only the columns the subscriber sees are named.
        let visible = Set(record.keys).union(old.keys)
        let columns: [JSONValue] = change.columns.filter { visible.contains($0.name) }.map { ["name": .string($0.name), "type": .string($0.type)] }
        let data: JSONObject = [
            "schema": .string(change.schema), "table": .string(change.table), "commit_timestamp": .string(change.commitTimestamp),
            "type": .string(change.kind.rawValue), "columns": .array(columns), "record": .object(record), "old_record": .object(old),
            "errors": .null,
        ]
        return String(decoding: JSONValue.object(data).encoded(), as: UTF8.self)
    }

    static func channelName(_ topic: String) -> String {
        topic.hasPrefix("realtime:") ? String(topic.dropFirst("realtime:".count)) : topic
    }
}
