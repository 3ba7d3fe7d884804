import Foundation
import PostgresNIO
import Runtime
import Tenancy

/// Why a source was not registered (or re-uploaded), in the words, code and HTTP status the admin
/// API answers with. Codes are stable (docs/errors.md): clients and tests match on them, so each
/// refusal keeps exactly the status, code, message, details and hint it has always had.
public struct RegistrationError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status number the refusal is answered with.
    public var status: Int
    public var code: String
    public var message: String
    public var details: String?
    public var hint: String?

    public init(status: Int, code: String, message: String, details: String? = nil, hint: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
    }

    public var description: String { "\(code) \(status): \(message)" }
}

extension RegistrationError {
    // MARK: Request fields

    public static func invalidField(_ field: String, _ why: String) -> RegistrationError {
        RegistrationError(status: 400, code: "MB101", message: "invalid value for '\(field)'", details: why)
    }

    // MARK: Sources

    public static func sourceNotFound(_ name: String) -> RegistrationError {
        RegistrationError(status: 404, code: "MB303", message: "source '\(name)' does not exist")
    }
    public static func sourceExists(_ name: String) -> RegistrationError {
        RegistrationError(status: 409, code: "MB304", message: "source '\(name)' already exists")
    }
    public static let notUploaded = RegistrationError(
        status: 409, code: "MB323", message: "only uploaded schemas are replaced by a new document; refresh other sources")

    // MARK: Documents

    /// A document (an uploaded schema, an API description) that does not parse; `what` names it.
    static func unreadable(_ what: String, _ failure: UploadedSchema.Failure) -> RegistrationError {
        RegistrationError(status: 400, code: "MB320", message: "\(what) cannot be read: \(failure.message)", details: failure.location)
    }
    static func noTables(_ format: UploadedSchema.Format) -> RegistrationError {
        RegistrationError(status: 400, code: "MB320", message: "the \(format.rawValue) document defines no tables", details: "document")
    }
    static func specNotFetched(_ why: String) -> RegistrationError {
        RegistrationError(status: 422, code: "MB324", message: why)
    }

    // MARK: Provisioning and migration

    static func notProvisionable(_ refusal: SchemaProvisioner.Refusal) -> RegistrationError {
        RegistrationError(status: 422, code: "MB321", message: "the model cannot be provisioned: \(refusal.message)")
    }
    static func notMigratable(_ refusal: SchemaProvisioner.Refusal) -> RegistrationError {
        RegistrationError(status: 422, code: "MB321", message: "the new model cannot be migrated to: \(refusal.message)")
    }
    static let noHostedDatabase = RegistrationError(
        status: 422, code: "MB322", message: "no hosted database to provision into",
        hint: "set MINIBAAS_HOSTED_DATABASE_URL (cluster nodes default to DATABASE_URL)")
    static func schemaTaken(_ schema: String) -> RegistrationError {
        RegistrationError(status: 409, code: "MB325", message: "the hosted database already has a schema named \(schema)")
    }
    static func destructiveMigration(_ steps: [String]) -> RegistrationError {
        RegistrationError(
            status: 409, code: "MB328", message: "the new schema would lose or rewrite data", details: steps.joined(separator: "; "),
            hint: "send allowDestructive: true to apply it anyway")
    }
    static func migrationRefused(_ error: any Error) -> RegistrationError {
        let state = PostgresControlPlaneStore.sqlState(of: error)
        return RegistrationError(
            status: 409, code: "MB329", message: "the hosted database refused the migration; nothing was changed",
            details: state.map { "SQLSTATE \($0)" } ?? "\(error)")
    }

    // MARK: SQLite

    static let sqliteNeedsEmbeddedNode = RegistrationError(
        status: 422, code: "MB352", message: "SQLite sources live on an embedded node's disk; a cluster node keeps tables in PostgreSQL",
        hint: "register a postgres source, or upload the schema with provision: true")
    static func sqliteRefused(_ error: any Error) -> RegistrationError {
        RegistrationError(status: 422, code: "MB351", message: "the SQLite database cannot be used", details: "\(error)")
    }

    // MARK: Upstream APIs

    static func graphQLNotIntrospected(_ failure: UpstreamSource.Failure) -> RegistrationError {
        RegistrationError(status: 422, code: "MB326", message: "the GraphQL endpoint cannot be introspected: \(upstreamMessage(failure))")
    }
    static func projectNotDescribed(_ failure: UpstreamSource.Failure) -> RegistrationError {
        RegistrationError(status: 422, code: "MB327", message: "the project's REST endpoint cannot be read: \(upstreamMessage(failure))")
    }

    /// The words the tenant API uses for the same failure (Edge's `UpstreamAPI.error`, at the
    /// root path): registration quotes them, so both read alike.
    static func upstreamMessage(_ failure: UpstreamSource.Failure) -> String {
        switch failure {
        case .noRoute(let allowed) where allowed.isEmpty: "the upstream API has no operation at /"
        case .noRoute: "the upstream API does not take this method here"
        case .invalid(let violation): "the request does not match the upstream's spec: \(violation.message)"
        case .unreachable: "the upstream API cannot be reached"
        case .timedOut: "the upstream API did not answer in time"
        case .circuitOpen: "the upstream API is failing; calls are paused"
        case .badAnswer: "the upstream API answered with something unusable"
        }
    }

    // MARK: Databases

    /// Names what went wrong reaching the database, without echoing its credentials.
    public static func connection(_ error: any Error, url: PostgresURL?) -> RegistrationError {
        let target = url.map { "\($0.host):\($0.port)/\($0.database)" } ?? "the source"
        if let error = error as? SourceError {
            return RegistrationError(status: 422, code: "MB312", message: error.description)
        }
        if error is TimeoutError {
            return RegistrationError(status: 422, code: "MB310", message: "timed out connecting to \(target)")
        }
        var psql = error as? PSQLError
        if psql == nil, let wrapped = error as? PostgresTransactionError { psql = wrapped.closureError as? PSQLError }
        if let psql {
            if let state = psql.serverInfo?[.sqlState] {
                let message = psql.serverInfo?[.message] ?? "database error"
                switch state {
                case "28P01", "28000": return RegistrationError(status: 422, code: "MB311", message: "authentication failed for \(target): \(message)")
                case "3D000": return RegistrationError(status: 422, code: "MB313", message: "database does not exist: \(message)")
                default:
                    return RegistrationError(
                        status: 422, code: "MB314", message: "the database refused introspection: \(message)", details: "SQLSTATE \(state)")
                }
            }
            let reason = "\(psql.code)".replacingOccurrences(of: "PSQLError.Code.", with: "")
            return RegistrationError(status: 422, code: "MB310", message: "cannot connect to \(target): \(reason)")
        }
        return RegistrationError(status: 422, code: "MB310", message: "cannot connect to \(target): \(error)")
    }
}
