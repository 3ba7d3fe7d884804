import Runtime
import Tenancy

/// What a tenant registered, as the admin API names it. Stored records keep the raw name; this is
/// the one place it is read.
public enum SourceKind: String, Sendable, Codable, CaseIterable {
    case postgres, supabase, schema, openapi, graphql, sqlite, mongodb
}

/// How a source's requests are served, decided once from its stored record (kind plus the flags
/// registration wrote), so no handler re-reads `proxy`/`served`/`provisioned` itself.
public enum SourceServing: Sendable, Equatable {
    /// Statements on a database: PostgreSQL (introspected, provisioned, or an upload over a
    /// database), SQLite (hosted tables, or a registered file) or MongoDB (sampled collections).
    case database
    /// A Supabase project reached through its own REST endpoint.
    case restProxy
    /// An OpenAPI-described REST API.
    case upstreamREST
    /// A GraphQL endpoint.
    case upstreamGraphQL
    /// An uploaded model nothing serves yet (documentation and validation only).
    case modelOnly
}

extension SourceRecord {
    public var sourceKind: SourceKind? { SourceKind(rawValue: kind) }

    public var serving: SourceServing {
        switch sourceKind {
        case .postgres: .database
        case .supabase: config["proxy"] == true ? .restProxy : .database
        case .schema: config["served"] == true ? .database : .modelOnly
        case .openapi: .upstreamREST
        case .graphql: .upstreamGraphQL
        case .sqlite: .database
        case .mongodb: .database
        case nil: .modelOnly
        }
    }

    /// Tables this node created for the source (an upload with `provision: true`).
    public var isProvisioned: Bool { sourceKind == .schema && config["provisioned"] == true }

    /// Tables held in a SQLite file under the node's data directory (`file`, relative to it):
    /// provisioned uploads of an embedded node, and `kind: sqlite` sources.
    public var sqliteFile: String? { config["sqliteFile"]?.stringValue }
}

/// One registered source of a tenant, whatever serves it: every kind is described by the same
/// model, so REST, OpenAPI and realtime are generated from `model` alone.
public protocol DataSource: AnyObject, Sendable {
    var name: String { get }
    var kind: SourceKind { get }
    var serving: SourceServing { get }
    var model: SchemaModel { get }
}

extension PostgresSource: DataSource {
    public var serving: SourceServing { .database }
}

extension RestProxySource: DataSource {
    public var kind: SourceKind { .supabase }
    public var serving: SourceServing { .restProxy }
}

extension UpstreamSource: DataSource {
    public var kind: SourceKind { .openapi }
    public var serving: SourceServing { .upstreamREST }
}

extension GraphQLUpstream: DataSource {
    public var kind: SourceKind { .graphql }
    public var serving: SourceServing { .upstreamGraphQL }
}
