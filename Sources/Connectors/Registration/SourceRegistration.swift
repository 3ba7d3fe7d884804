import Runtime
import Tenancy

/// What registering (or re-uploading) a source found, for the admin API's answer: the model, and
/// what each kind adds to it. A field a kind does not answer with stays nil.
public struct SourceRegistration: Sendable {
    public var name: String
    public var kind: SourceKind
    public var model: SchemaModel
    public var schemas: [String]
    /// Whether realtime can follow the source's own changes; set by
    /// `SourceRegistrar.probeChangeCapture` for sources registered by their database URL.
    public var changeCapture: PostgresChangeFeed.Capability?
    /// The same, said by a kind with its own modes (`mongodb`: change streams or REST writes).
    public var changeCaptureSummary: JSONValue?
    /// `openapi`: the upstream's base URL and its operations (`METHOD path (operationId)`).
    public var baseURL: String?
    public var operations: [String]?
    /// `graphql`: the endpoint.
    public var url: String?
    /// `supabase` without `dbUrl`: reached through the project's REST endpoint.
    public var proxy: Bool?
    /// `schema`: the document's format, whether it was provisioned.
    public var format: UploadedSchema.Format?
    public var provisioned: Bool?
    /// A re-upload: what changed, in words.
    public var changes: [String]?
    /// `schema`: what was read but not modelled or provisioned.
    public var warnings: [String]?
    /// `mongodb`: fields whose sampled types clash (`{collection, field, types, sampled}`).
    public var sampleWarnings: [JSONValue]?
    /// The database whose change capture is probed once the registration is answered for.
    var changeCaptureURL: PostgresURL?

    public init(name: String, kind: SourceKind, model: SchemaModel, schemas: [String]) {
        self.name = name
        self.kind = kind
        self.model = model
        self.schemas = schemas
    }
}

extension PostgresChangeFeed.Capability {
    /// The capability as the registration answer reports it: the mode realtime runs in, and if
    /// it cannot follow the source's own changes, why and what still works.
    public var summary: JSONValue {
        switch self {
        case .available:
            ["mode": "logical-decoding", "detail": "every committed change is streamed from a wal2json replication slot"]
        case .unavailable(let why):
            ["mode": "rest-writes", "reason": .string(why),
             "detail": "only changes made through this API's REST writes reach realtime subscribers"]
        }
    }
}
