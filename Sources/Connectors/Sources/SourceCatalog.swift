import Foundation
import Logging
import PostgresNIO
import Runtime
import SQLiteNIO
import Tenancy

/// Registers, refreshes and loads a tenant's sources. Registration connects and introspects
/// before anything is stored, so a source that cannot be read is never half-written; credentials
/// are sealed under the master key and bound to their tenant and source.
public struct SourceCatalog: Sendable {
    public let store: any ControlPlaneStore
    public let secretBox: SecretBox
    public let logger: Logger
    /// Where SQLite-hosted sources keep their files; nil on a cluster node, whose tenants move
    /// between machines and so keep their tables in PostgreSQL.
    public let sqliteFiles: SQLiteFiles?
    /// The node's shared connections to its hosted database, which provisioned schemas there use
    /// instead of pools of their own.
    public let hostedPools: HostedConnectionPools?

    public init(
        store: any ControlPlaneStore, secretBox: SecretBox, logger: Logger, sqliteFiles: SQLiteFiles? = nil, hostedPools: HostedConnectionPools? = nil
    ) {
        self.store = store
        self.secretBox = secretBox
        self.logger = logger
        self.sqliteFiles = sqliteFiles
        self.hostedPools = hostedPools
    }

    /// What a PostgreSQL-backed source (postgres, or supabase with its database URL) needs.
    public struct PostgresRegistration: Sendable {
        public var name: String
        public var kind: String
        public var url: PostgresURL
        public var schemas: [String]
        public var maxConnections: Int
        /// Extra public configuration to keep (e.g. the Supabase project URL).
        public var extra: JSONObject
        /// Extra secrets to seal (e.g. the Supabase service key).
        public var extraSecrets: JSONObject
        /// An uploaded model to serve instead of introspecting (the connection user may not be
        /// allowed to read the catalogs); the database is only checked to be reachable.
        public var uploadedModel: SchemaModel?

        public init(name: String, kind: String, url: PostgresURL, schemas: [String], maxConnections: Int, extra: JSONObject = [:], extraSecrets: JSONObject = [:]) {
            self.name = name
            self.kind = kind
            self.url = url
            self.schemas = schemas
            self.maxConnections = maxConnections
            self.extra = extra
            self.extraSecrets = extraSecrets
        }
    }

    public static func secretContext(tenant: String, source: String) -> String {
        "tenant:\(tenant):source:\(source)"
    }

    public func register(tenant: String, _ registration: PostgresRegistration, requestID: String?) async throws -> SchemaModel {
        let model: SchemaModel
        if let uploaded = registration.uploadedModel {
            try await PostgresSource.ping(url: registration.url, logger: logger)
            model = uploaded
        } else {
            model = try await PostgresSource.introspect(url: registration.url, schemas: registration.schemas, logger: logger)
        }
        var secrets = registration.extraSecrets
        secrets["url"] = .string(registration.urlText)
        let sealed = try secretBox.seal(JSONValue.object(secrets).encoded(), context: Self.secretContext(tenant: tenant, source: registration.name))
        var config = registration.extra
        config["schemas"] = .array(registration.schemas.map(JSONValue.string))
        config["maxConnections"] = .integer(Int64(registration.maxConnections))
        config["host"] = .string(registration.url.host)
        config["port"] = .integer(Int64(registration.url.port))
        config["database"] = .string(registration.url.database)
        config["user"] = .string(registration.url.username)
        config["sslmode"] = .string(registration.url.sslMode.rawValue)
        let now = Date()
        let record = SourceRecord(
            tenant: tenant, name: registration.name, kind: registration.kind, config: config, sealedSecrets: sealed,
            model: try await Self.encoded(model), createdAt: now, updatedAt: now)
        try await store.createSource(record, audit: AuditEntry(
            at: now, actor: "admin", action: "source.create", tenant: tenant, requestID: requestID,
            detail: ["name": .string(registration.name), "kind": .string(registration.kind), "url": .string(registration.url.redacted)]))
        return model
    }

    /// Stores a source that no database serves: an uploaded model kept as a model, or an upstream
    /// API (its spec in `config`, its credentials in `secrets`, sealed).
    public func registerStored(
        tenant: String, name: String, kind: String, config: JSONObject, secrets: JSONObject = [:], model: SchemaModel, requestID: String?
    ) async throws {
        let now = Date()
        let sealed = try secretBox.seal(JSONValue.object(secrets).encoded(), context: Self.secretContext(tenant: tenant, source: name))
        let record = SourceRecord(
            tenant: tenant, name: name, kind: kind, config: config, sealedSecrets: sealed,
            model: try await Self.encoded(model), createdAt: now, updatedAt: now)
        var detail: JSONObject = ["name": .string(name), "kind": .string(kind)]
        if let base = config["baseUrl"] { detail["baseUrl"] = base }
        try await store.createSource(record, audit: AuditEntry(at: now, actor: "admin", action: "source.create", tenant: tenant, requestID: requestID, detail: detail))
    }

    /// Drops the hosted tables of a provisioned upload, with their data: they exist only for the
    /// source being deleted. Anything else is left alone; a failure is logged, not thrown, so a
    /// deletion is never blocked by an unreachable hosted database.
    public func dropProvisioned(_ record: SourceRecord) async {
        if let file = record.sqliteFile {
            // Only files this node made; a file the tenant registered by its path stays theirs.
            if record.config["hosted"] == true { sqliteFiles?.remove(file) }
            return
        }
        if record.serving == .database, let (url, _, _) = try? open(record) {
            // The change feed's slot would keep WAL on the server forever.
            await PostgresChangeFeed.dropSlot(PostgresChangeFeed.slotName(tenant: record.tenant, source: record.name), url: url, logger: logger)
        }
        guard record.isProvisioned else { return }
        do {
            let (url, schemas, _) = try open(record)
            for schema in schemas { try await SchemaProvisioner(url: url, schema: schema, logger: logger).drop() }
        } catch {
            logger.error("cannot drop provisioned schema", metadata: ["tenant": .string(record.tenant), "source": .string(record.name), "error": .string("\(error)")])
        }
    }

    /// Re-introspects a stored source and replaces its model. An uploaded model served over a
    /// database the node may not introspect stays as uploaded (`SourceCatalogError.uploaded`).
    public func refresh(tenant: String, name: String, requestID: String?) async throws -> SchemaModel? {
        guard let record = try await store.sources(tenant).first(where: { $0.name == name }) else { return nil }
        // Only what this node introspects can be refreshed: a database it may read the catalogs
        // of, or tables it provisioned itself.
        guard record.serving == .database, record.sourceKind != .schema || record.isProvisioned else {
            throw SourceCatalogError.uploadedModel(name)
        }
        if let file = record.sqliteFile {
            // Hosted tables keep the model they were made from; a registered file is read again.
            guard record.config["hosted"] != true, let files = sqliteFiles else { throw SourceCatalogError.uploadedModel(name) }
            let model = try await Self.introspectSQLite(files.absolute(file), logger: logger)
            _ = try await store.updateSourceModel(
                tenant: tenant, name: name, model: try await Self.encoded(model),
                audit: AuditEntry(at: Date(), actor: "admin", action: "source.refresh", tenant: tenant, requestID: requestID, detail: ["name": .string(name)]))
            return model
        }
        if record.sourceKind == .mongodb {
            let model = try await refreshMongoDB(record, current: await Self.decodedModel(of: record))
            _ = try await store.updateSourceModel(
                tenant: tenant, name: name, model: try await Self.encoded(model),
                audit: AuditEntry(at: Date(), actor: "admin", action: "source.refresh", tenant: tenant, requestID: requestID, detail: ["name": .string(name)]))
            return model
        }
        let (url, schemas, _) = try open(record)
        let model = try await PostgresSource.introspect(url: url, schemas: schemas, logger: logger)
        _ = try await store.updateSourceModel(
            tenant: tenant, name: name, model: try await Self.encoded(model),
            audit: AuditEntry(at: Date(), actor: "admin", action: "source.refresh", tenant: tenant, requestID: requestID, detail: ["name": .string(name)]))
        return model
    }

    /// Opens a record's sealed URL and its settings.
    public func open(_ record: SourceRecord) throws -> (PostgresURL, [String], Int) {
        guard let text = try secrets(of: record)["url"]?.stringValue else { throw ControlPlaneError.corrupt("source \(record.name) has no URL") }
        let url = try PostgresURL(text)
        let schemas = record.config["schemas"]?.arrayValue?.compactMap(\.stringValue) ?? ["public"]
        let maxConnections = Int(record.config["maxConnections"]?.intValue ?? 10)
        return (url, schemas, maxConnections)
    }

    public static func model(of record: SourceRecord) -> SchemaModel {
        (try? JSONDecoder().decode(SchemaModel.self, from: Data(record.model.utf8)))?.compacted() ?? SchemaModel()
    }

    /// The same off the event loops: a model of thousands of tables takes long to decode, and a
    /// tree starts (a hand-over) while the node must keep renewing its leases.
    public static func decodedModel(of record: SourceRecord) async -> SchemaModel {
        (try? await offloaded { model(of: record) }) ?? SchemaModel()
    }

    /// A model as stored, encoded off the event loops.
    public static func encoded(_ model: SchemaModel) async throws -> String {
        try await offloaded { String(decoding: try JSONEncoder().encode(model), as: UTF8.self) }
    }

    /// Builds a tenant's sources from the control plane, every kind into one registry (by name,
    /// as the store lists them). Database sources come with their pools not yet running: the tenant's
    /// tree runs each as a supervised child.
    public func loadSources(of tenant: Tenant) async throws -> SourceRegistry {
        let records = try await store.sources(tenant.slug)
        var sources: [any DataSource] = []
        for record in records {
            switch record.serving {
            case .database:
                if record.sourceKind == .mongodb {
                    sources.append(try await mongo(record, limits: tenant.limits))
                } else if let file = record.sqliteFile {
                    guard let files = sqliteFiles else {
                        logger.error("a SQLite source on a node without a data directory", metadata: ["tenant": .string(tenant.slug), "source": .string(record.name)])
                        continue
                    }
                    sources.append(SQLiteSource(
                        name: record.name, kind: record.sourceKind ?? .sqlite, path: files.absolute(file), model: await Self.decodedModel(of: record),
                        logger: logger))
                } else {
                    sources.append(try await database(record, limits: tenant.limits))
                }
            case .restProxy:
                guard let project = record.config["projectUrl"]?.stringValue else { continue }
                guard let key = try secrets(of: record)["serviceKey"]?.stringValue else { continue }
                sources.append(RestProxySource(name: record.name, projectURL: project, serviceKey: key, model: await Self.decodedModel(of: record)))
            case .upstreamREST:
                guard let document = record.config["spec"], let base = record.config["baseUrl"]?.stringValue else { continue }
                let spec: UpstreamSpec
                do {
                    spec = try UpstreamSpec.parse(document)
                } catch {
                    logger.error("stored upstream spec does not parse", metadata: ["tenant": .string(tenant.slug), "source": .string(record.name)])
                    continue
                }
                sources.append(UpstreamSource(name: record.name, spec: spec, baseURL: base, headers: try headers(of: record), model: await Self.decodedModel(of: record)))
            case .upstreamGraphQL:
                guard let url = record.config["url"]?.stringValue else { continue }
                sources.append(GraphQLUpstream(name: record.name, url: url, headers: try headers(of: record), model: await Self.decodedModel(of: record)))
            case .modelOnly:
                continue
            }
        }
        let databases = records.filter { $0.serving == .database }
        let defaultName = databases.first { $0.name == "default" }?.name ?? databases.min { $0.createdAt < $1.createdAt }?.name
        return SourceRegistry(sources, defaultName: defaultName)
    }

    /// The tenant's policies; a stored document that no longer parses denies everything.
    public func loadPolicies(of slug: String) async throws -> [Policy] {
        guard let document = try await store.policies(slug) else { return [] }
        do {
            return try PolicyParser.parse(document: try JSONValue.parse(Array(document.utf8)))
        } catch {
            // Stored documents were validated on write; one that no longer reads denies all.
            logger.error("stored policies do not parse; denying", metadata: ["tenant": .string(slug), "error": .string("\(error)")])
            return []
        }
    }

    private func mongo(_ record: SourceRecord, limits: TenantLimits) async throws -> MongoSource {
        guard let url = try secrets(of: record)["url"]?.stringValue, let database = record.config["database"]?.stringValue else {
            throw ControlPlaneError.corrupt("source \(record.name) has no URL or database")
        }
        var settings = MongoSource.Settings()
        settings.maxConnections = Int(record.config["maxConnections"]?.intValue ?? 10)
        settings.acquireTimeout = .milliseconds(record.config["acquireTimeoutMs"]?.intValue ?? 5_000)
        settings.requestTimeoutMs = limits.requestTimeoutMs
        let changeStreams = record.config["replicaSet"] == true && record.config["changeStreams"]?.stringValue != "off"
        return try MongoSource(
            name: record.name, url: url, database: database, model: await Self.decodedModel(of: record), changeStreams: changeStreams,
            settings: settings, logger: logger)
    }

    private func database(_ record: SourceRecord, limits: TenantLimits) async throws -> PostgresSource {
        let (url, schemas, maxConnections) = try open(record)
        var settings = PostgresSource.Settings()
        settings.maxConnections = maxConnections
        if let acquire = record.config["acquireTimeoutMs"]?.intValue { settings.acquireTimeout = .milliseconds(acquire) }
        // Decided when loading, so sources registered before the setting existed get the
        // pooler rule too.
        if case .bool(let prepared)? = record.config["preparedStatements"] {
            settings.preparedStatements = prepared
        } else {
            settings.preparedStatements = !url.isTransactionPooler
        }
        // The database gives up a little before the tenant's deadline, so a slow statement is
        // cancelled where it runs instead of holding its connection after the client is answered.
        settings.statementTimeoutMs = max(50, limits.requestTimeoutMs * 9 / 10)
        // A schema the node provisioned in its hosted database is served over the node's shared
        // connections there, so active tenants do not each keep connections of their own.
        let hosted = hostedPools.flatMap { pools in record.config["provisioned"] == true && pools.serves(url) ? pools : nil }
        return PostgresSource(
            name: record.name, kind: record.sourceKind ?? .postgres, url: url, schemas: schemas, model: await Self.decodedModel(of: record),
            settings: settings, hosted: hosted, logger: logger)
    }
}

extension SourceCatalog {
    /// An upstream's sealed headers (its credentials), opened.
    func headers(of record: SourceRecord) throws -> [(String, String)] {
        (try secrets(of: record)["headers"]?.objectValue ?? [:]).compactMap { name, value in value.stringValue.map { (name, $0) } }
    }

    /// A record's sealed credentials, opened.
    func secrets(of record: SourceRecord) throws -> JSONValue {
        try JSONValue.parse(try secretBox.open(record.sealedSecrets, context: Self.secretContext(tenant: record.tenant, source: record.name)))
    }
}

extension SourceCatalog.PostgresRegistration {
    /// The URL as given, credentials included, for sealing.
    var urlText: String {
        var components = URLComponents()
        components.scheme = "postgresql"
        components.user = url.username
        components.password = url.password
        components.host = url.host.contains(":") ? "[\(url.host)]" : url.host
        components.port = url.port
        components.path = "/" + url.database
        components.queryItems = [URLQueryItem(name: "sslmode", value: url.sslMode.rawValue)]
        return components.string ?? url.redacted
    }
}

public enum SourceCatalogError: Error, Equatable, CustomStringConvertible {
    case uploadedModel(String)
    public var description: String {
        switch self {
        case .uploadedModel(let name): "source '\(name)' serves an uploaded model; upload a new document instead of refreshing"
        }
    }
}

extension SourceCatalog {
    /// Reads the model of a SQLite file (opened for this only).
    public static func introspectSQLite(_ path: String, logger: Logger) async throws -> SchemaModel {
        let connection = try await SQLiteHandle.open(path: path)
        do {
            let model = try await SQLiteIntrospector.model(of: connection)
            await connection.close()
            return model
        } catch {
            await connection.close()
            throw error
        }
    }
}
