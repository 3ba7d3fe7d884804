import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://` / `postgresql://` connection URL, parsed the way libpq reads one, into what
/// postgres-nio needs. The password never appears in `redacted` or in errors.
public struct PostgresURL: Sendable, Equatable {
    public enum SSLMode: String, Sendable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    public var applicationName: String?

    public init(_ text: String) throws(PostgresURLError) {
        guard let components = URLComponents(string: text) else { throw .invalid("not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw .invalid("the scheme must be postgres:// or postgresql://")
        }
        guard var host = components.percentEncodedHost.flatMap({ $0.removingPercentEncoding }), !host.isEmpty else {
            throw .invalid("the URL has no host")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw .invalid("port \(port) is out of range") }
        self.username = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let path = components.percentEncodedPath.removingPercentEncoding ?? ""
        let database = path.hasPrefix("/") ? String(path.dropFirst()) : path
        self.database = database.isEmpty ? username : database
        self.sslMode = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: item.value ?? "") else {
                    throw .invalid("sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full")
                }
                self.sslMode = mode
            case "application_name":
                self.applicationName = item.value
            default:
                continue  // libpq options we do not act on (connect_timeout, pgbouncer …)
            }
        }
    }

    /// The URL with the password masked, for logs and API answers.
    public var redacted: String {
        let user = username.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? username
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgresql://\(user)\(password == nil ? "" : ":***")@\(hostPart):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    /// For one connection that must fail fast with the real reason (source registration).
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable:
            tls = .disable
        case .allow, .prefer, .require, .verifyCA:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = sslMode == .verifyCA ? .noHostnameVerification : .none
            let context = try NIOSSLContext(configuration: config)
            tls = sslMode == .require || sslMode == .verifyCA ? .require(context) : .prefer(context)
        case .verifyFull:
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        if let applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        }
        return configuration
    }

    public func clientConfiguration() -> PostgresClient.Configuration {
        var tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable:
            tls = .disable
        case .allow, .prefer:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            tls = .prefer(config)
        case .require:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            tls = .require(config)
        case .verifyCA:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .noHostnameVerification
            tls = .require(config)
        case .verifyFull:
            tls = .require(TLSConfiguration.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        if let applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", applicationName))
        }
        return configuration
    }
}

public enum PostgresURLError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let why): "invalid PostgreSQL URL: \(why)"
        }
    }
}
