import Connectors
import Foundation
import Runtime
import Search
import Tenancy

/// While a PostgreSQL-backed index is being built (a new owner, a first build), a search is
/// answered by SQL rather than 503: every query word must appear (`ILIKE '%word%'`, no typos or
/// ranking) in one of the searchable text columns, with `sort` as ORDER BY, paging, exact totals,
/// and the caller's policies compiled into the statement by the REST planner — one statement,
/// every value a bind. What SQL cannot answer the same way (filters, facets, distinct,
/// highlighting, cropping) still answers 503 MB887.
struct SearchFallback {
    let source: any DatabaseSource
    let entity: Entity
    let settings: IndexSettings

    static func applies(to query: SearchQuery) -> Bool {
        query.filter == nil && query.facets.isEmpty && query.distinct == nil && query.attributesToHighlight.isEmpty && query.attributesToCrop.isEmpty
            && !query.showMatchesPosition
    }

    func search(_ query: SearchQuery, access: Access, view: SearchView) async throws -> JSONObject {
        let started = ContinuousClock.now
        let searchable = settings.searchableAttributes == ["*"] ? entity.columns.filter { $0.type == .string }.map(\.name)
            : settings.searchableAttributes.filter { entity.column(named: $0)?.type == .string }
        // Only what the caller may read is searched (the planner would refuse the rest).
        let columns = searchable.filter { (query.attributesToSearchOn?.contains($0) ?? true) && view.allows($0) }
        var parameters: [(String, String)] = [("select", "*")]
        let words = TextNormalizer.words(query.q ?? "", limit: 10)
        if !words.isEmpty {
            guard !columns.isEmpty else { return answer(query, rows: [], total: 0, started: started) }
            // Words are letters and digits only: nothing in them can break out of the grammar.
            let each = words.map { word in "or(" + columns.map { "\($0).ilike.*\(word)*" }.joined(separator: ",") + ")" }
            parameters.append(("and", "(" + each.joined(separator: ",") + ")"))
        }
        let sort = query.sort.filter { entity.column(named: $0.attribute) != nil }
        let order = sort.map { "\($0.attribute).\($0.ascending ? "asc" : "desc").nullslast" }
            + entity.primaryKey.filter { view.allows($0) }.map { "\($0).asc" }
        if !order.isEmpty { parameters.append(("order", order.joined(separator: ","))) }
        // The most the page can show: the answer's own window over at most maxTotalHits matches.
        let window = query.window(total: settings.maxTotalHits, maxTotalHits: settings.maxTotalHits)
        let take = window.count
        parameters.append(("limit", String(take)))
        parameters.append(("offset", String(window.lowerBound)))
        let planner = RestPlanner(model: source.model, access: access)
        let plan = try planner.read(entity.name, try RestQueryParser.parse(parameters))
        let result = try await source.read(plan, count: true)
        let rows = (try JSONValue.parse(Array((result.body ?? "[]").utf8)).arrayValue ?? []).compactMap(\.objectValue)
        return answer(query, rows: take == 0 ? [] : rows, total: result.total ?? rows.count, started: started)
    }

    private func answer(_ query: SearchQuery, rows: [JSONObject], total: Int, started: ContinuousClock.Instant) -> JSONObject {
        let displayed = settings.displayedAttributes
        let requested = query.attributesToRetrieve ?? ["*"]
        var response: JSONObject = [
            "hits": .array(rows.map { row in
                var hit = JSONObject()
                for (name, value) in row where (displayed.contains("*") || displayed.contains(name)) && (requested.contains("*") || requested.contains(name)) {
                    hit[name] = value
                }
                return .object(hit)
            }),
            "query": .string(query.q ?? ""),
        ]
        for (name, value) in query.pagingFields(total: total, maxTotalHits: settings.maxTotalHits) { response[name] = value }
        response["processingTimeMs"] = .integer(Int64(Supervisor.milliseconds(ContinuousClock.now - started)))
        return response
    }
}

extension SearchSubsystem {
    /// The SQL answer for a warming index over PostgreSQL, or nil when this query or source
    /// cannot be answered that way (the caller answers 503 MB887 then).
    public func fallbackSearch(_ index: SearchIndex, _ query: SearchQuery, caller: Caller) async throws -> JSONObject? {
        guard SearchFallback.applies(to: query), let source = data.sources.database(named: index.source), source is PostgresSource,
            let entity = source.model.entity(named: index.entity)
        else { return nil }
        // The same refusals as the in-memory path: hidden columns are not nameable.
        let view = try view(for: caller, of: index)
        for name in query.namedAttributes where !view.allows(name) { throw SearchError.hiddenAttribute(name) }
        return try await SearchFallback(source: source, entity: entity, settings: index.settings).search(query, access: data.access(for: caller), view: view)
    }
}
