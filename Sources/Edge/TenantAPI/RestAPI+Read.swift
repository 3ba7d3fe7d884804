import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

extension RestAPI {
    /// GET and HEAD: planned once; answered from the tenant's cache when an entry is fresh (the
    /// in-process shard, then in cluster mode the shared tier), else from one statement whose
    /// answer is stored in both.
    func read(
        _ request: Request, context: EdgeContext, target: Target, entity: String, items: [(String, String)], query: RestQuery,
        prefer: Preferences
    ) async throws -> Response {
        var query = query
        try applyRange(request.headers, to: &query)
        let cache = context.tenant?.cache.reads
        // Made only with a cache to look in: it spells out every claim of the caller's token.
        let cacheKey = cache == nil && context.tenant?.cache.shared == nil ? nil : context.caller.map { caller in
            RestReadCache.key(
                source: target.source.name, entity: entity, query: items, range: request.headers.value(.range),
                rangeUnit: request.headers.value(.rangeUnit), prefer: request.headers.value(.prefer), caller: caller)
        }
        let plan = try Self.rest { try target.planner.read(entity, query) }
        if let cache, let cacheKey, !prefer.rollback, let cached = cache.get(cacheKey) {
            return try respond(read: cached, request: request, prefer: prefer, offset: plan.offset ?? 0)
        }
        // Taken before anything is read: an answer that raced an invalidation is not stored.
        let epoch = cache?.epoch(of: target.source.name)
        // Cluster mode: the shared tier.
        let shared = prefer.rollback ? nil : context.tenant?.cache.shared
        var ticket: SharedReadCache.Ticket?
        if let shared, let cacheKey {
            ticket = await shared.ticket(for: target.source.name)
            if let ticket, let (found, remaining) = await shared.get(cacheKey, ticket) {
                cache?.put(cacheKey, source: target.source.name, epoch: epoch, lifetime: remaining, found)
                return try respond(read: found, request: request, prefer: prefer, offset: plan.offset ?? 0)
            }
        }
        var result: StatementResult
        // Inline rather than through `Self.rest`: an async closure is a frame allocated per request.
        do {
            var planned: Int?
            if prefer.count == .planned || prefer.count == .estimated {
                planned = try await target.source.estimate(plan)
            }
            // `estimated`: exact while that is cheap, the planner's figure beyond.
            let exact = prefer.count == .exact || (prefer.count == .estimated && (planned ?? 0) <= Self.exactCountLimit)
            result = try await target.source.read(plan, count: exact)
            if !exact, let planned { result.total = planned }
        } catch let error as RestError {
            throw APIError(error)
        }
        if let cache, let cacheKey { cache.put(cacheKey, source: target.source.name, epoch: epoch, result) }
        if let shared, let cacheKey, let ticket { shared.put(cacheKey, ticket, result) }
        return try respond(read: result, request: request, prefer: prefer, offset: plan.offset ?? 0)
    }
}
