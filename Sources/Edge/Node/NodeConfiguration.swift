import Connectors
import Foundation
import Jobs
import Logging
import Storage
import Tenancy

/// Everything a node is told at start-up, from flags and environment. Resolution either yields a
/// complete, checked configuration or one clear line saying what is wrong.
struct NodeConfiguration: Sendable {
    enum Mode: String, Sendable { case embedded, cluster }

    var host: String
    var port: Int
    var dataDir: String
    var databaseURL: PostgresURL?
    /// Where uploaded schemas are provisioned: `MINIBAAS_HOSTED_DATABASE_URL`, else `DATABASE_URL`.
    var hostedDatabaseURL: PostgresURL?
    var redisURL: String?
    var adminToken: String?
    var masterKey: String?
    var baseDomain: String?
    var nodeID: String
    var publicURL: String?
    var logLevel: Logger.Level
    var shutdownGrace: Duration
    /// Where other nodes reach this one; defaults to the address the server bound.
    var advertiseURL: String?
    var heartbeatInterval: Duration = .seconds(1)
    var leaseTTL: Duration = .seconds(5)
    /// How long past the start of a Redis outage a node keeps serving the tenants it held.
    var outageGrace: Duration = .seconds(5)
    /// `proxy`: requests for a tenant another node owns are forwarded; `redirect`: answered 307.
    var forwarding: OwnerForwarder.Mode = .proxy
    /// Prefix of every Redis key and channel, so several clusters can share one Redis.
    var redisPrefix = "minibaas:"
    /// How long a REST read is answered from the cache (both tiers) when nothing invalidated it:
    /// the bound on how stale a write made behind mini-baas's back can be seen. 0 turns caching off.
    var cacheTTL: Duration = .seconds(1)
    /// `MINIBAAS_TENANT_IDLE_MS`: a tenant's tree with no request for this long is passivated
    /// (its sources closed, its memory given back); the next request starts it again.
    var tenantIdle: Duration = .seconds(300)
    /// Object storage's directory (`MINIBAAS_STORAGE_DIR`, default `<data dir>/storage`).
    var storageDir: String?
    /// `MINIBAAS_STORAGE_SHARED=1`: every node of the cluster sees the same storage directory.
    var storageShared = false
    /// `MINIBAAS_STORAGE_IO`: `auto`, `posix` or `uring`.
    var storageIO = "auto"
    /// `MINIBAAS_STORAGE_BACKEND=s3` and its `MINIBAAS_STORAGE_S3_*` settings; nil: local disk.
    var storageS3: S3BlobStore.Settings?
    /// Where jobs may send requests (`MINIBAAS_OUTBOUND_ALLOW_CIDRS` opens internal ranges).
    var outbound = OutboundPolicy()
    /// `MINIBAAS_JOB_SLOTS`: jobs running at once on this node, all tenants together.
    var jobSlots = 256
    /// `MINIBAAS_HOSTED_POOL_SIZE`: connections this node keeps to its hosted database at most, all
    /// tenants' provisioned schemas together (one tenant takes at most a quarter of them).
    var hostedPoolSize = 32
    /// `MINIBAAS_SIGNIN_ATTEMPTS` (`account,address`): password attempts allowed per 5 minutes for
    /// one account and from one client address, per tenant (default 10 and 60).
    var signInAttempts = (account: 10, address: 60)
    /// Where unexpected errors are reported (`MINIBAAS_SENTRY_DSN`), and as which environment.
    var sentryDSN: SentryDSN?
    var sentryEnvironment: String?

    var storageDirectory: String { storageDir ?? (dataDir.hasSuffix("/") ? dataDir + "storage" : dataDir + "/storage") }

    var mode: Mode { databaseURL == nil ? .embedded : .cluster }

    /// Where an embedded node keeps SQLite-hosted tables; a cluster node's tenants move between
    /// machines, so their tables live in PostgreSQL.
    var sqliteFiles: SQLiteFiles? { mode == .embedded ? SQLiteFiles(dataDirectory: dataDir) : nil }

    /// The base every tenant's `apiUrl` starts from.
    var publicBaseURL: String {
        if let publicURL { return publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
        let shownHost = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        return "http://\(shownHost.contains(":") ? "[\(shownHost)]" : shownHost):\(port)"
    }

    static func resolve(
        host: String?, port: Int?, dataDir: String?, environment: [String: String]
    ) throws(ConfigurationError) -> NodeConfiguration {
        func env(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        let host = host ?? env("MINIBAAS_HOST") ?? "127.0.0.1"
        guard !host.isEmpty, !host.contains("/") else { throw .init("--host must be a host name or IP address") }
        let resolvedPort: Int
        if let port {
            resolvedPort = port
        } else if let text = env("MINIBAAS_PORT") ?? env("PORT") {
            guard let parsed = Int(text) else { throw .init("PORT must be a number; got '\(text)'") }
            resolvedPort = parsed
        } else {
            resolvedPort = 8080
        }
        guard (0...65535).contains(resolvedPort) else { throw .init("--port must be between 0 and 65535; got \(resolvedPort)") }

        var databaseURL: PostgresURL?
        if let text = env("DATABASE_URL") {
            do { databaseURL = try PostgresURL(text) } catch { throw .init("DATABASE_URL: \(error)") }
        }
        var hostedDatabaseURL = databaseURL
        if let text = env("MINIBAAS_HOSTED_DATABASE_URL") {
            do { hostedDatabaseURL = try PostgresURL(text) } catch { throw .init("MINIBAAS_HOSTED_DATABASE_URL: \(error)") }
        }
        let redisURL = env("REDIS_URL")
        if let redisURL, !(redisURL.hasPrefix("redis://") || redisURL.hasPrefix("rediss://")) {
            throw .init("REDIS_URL must start with redis:// or rediss://")
        }
        let adminToken = env("MINIBAAS_ADMIN_TOKEN")
        if let adminToken, adminToken.utf8.count < 16 {
            throw .init("MINIBAAS_ADMIN_TOKEN must be at least 16 characters")
        }
        let masterKey = env("MINIBAAS_MASTER_KEY")
        if let masterKey {
            do { _ = try MasterKey.parse(masterKey) } catch { throw .init("\(error)") }
        } else if databaseURL != nil {
            throw .init("MINIBAAS_MASTER_KEY is required when DATABASE_URL is set (every node must seal secrets with the same key)")
        }
        var baseDomain = env("MINIBAAS_BASE_DOMAIN")?.lowercased()
        if let domain = baseDomain {
            let trimmed = domain.hasPrefix(".") ? String(domain.dropFirst()) : domain
            guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else {
                throw .init("MINIBAAS_BASE_DOMAIN must be a domain name like api.example.com")
            }
            baseDomain = trimmed
        }
        let nodeID = env("MINIBAAS_NODE_ID") ?? Self.defaultNodeID()
        guard nodeID.utf8.count <= 64, nodeID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw .init("MINIBAAS_NODE_ID may hold letters, digits, '-', '_' and '.', at most 64")
        }
        let publicURL = env("MINIBAAS_PUBLIC_URL")
        if let publicURL {
            guard let url = URL(string: publicURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw .init("MINIBAAS_PUBLIC_URL must be an http(s) URL")
            }
        }
        let level: Logger.Level
        if let text = env("MINIBAAS_LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                throw .init("MINIBAAS_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
            }
            level = parsed
        } else {
            level = .info
        }
        func milliseconds(_ name: String, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Duration {
            guard let text = env(name) else { return .milliseconds(value) }
            guard let parsed = Int(text), range.contains(parsed) else {
                throw .init("\(name) must be a number of milliseconds between \(range.lowerBound) and \(range.upperBound); got '\(text)'")
            }
            return .milliseconds(parsed)
        }
        let heartbeat = try milliseconds("MINIBAAS_HEARTBEAT_MS", default: 1000, range: 50...60_000)
        let leaseTTL = try milliseconds("MINIBAAS_LEASE_TTL_MS", default: 5000, range: 200...600_000)
        guard leaseTTL >= heartbeat * 2 else { throw .init("MINIBAAS_LEASE_TTL_MS must be at least twice MINIBAAS_HEARTBEAT_MS") }
        let (ttlSeconds, ttlAttoseconds) = leaseTTL.components
        let outageGrace = try milliseconds(
            "MINIBAAS_REDIS_OUTAGE_GRACE_MS", default: Int(ttlSeconds * 1000 + ttlAttoseconds / 1_000_000_000_000_000), range: 0...3_600_000)
        let forwarding: OwnerForwarder.Mode
        if let text = env("MINIBAAS_FORWARDING") {
            guard let mode = OwnerForwarder.Mode(rawValue: text.lowercased()) else {
                throw .init("MINIBAAS_FORWARDING must be proxy or redirect; got '\(text)'")
            }
            forwarding = mode
        } else {
            forwarding = .proxy
        }
        let advertiseURL = env("MINIBAAS_ADVERTISE_URL").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        if let advertiseURL {
            guard let url = URL(string: advertiseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                url.path.isEmpty
            else {
                throw .init("MINIBAAS_ADVERTISE_URL must be an http(s) URL without a path, like http://10.0.0.5:8080")
            }
        }
        let redisPrefix = env("MINIBAAS_REDIS_PREFIX") ?? "minibaas:"
        guard redisPrefix.utf8.count <= 64, !redisPrefix.contains(where: { $0.isWhitespace || $0 == "*" }) else {
            throw .init("MINIBAAS_REDIS_PREFIX may not contain spaces or '*' and must be at most 64 bytes")
        }
        let cacheTTL = try milliseconds("MINIBAAS_CACHE_TTL_MS", default: 1000, range: 0...86_400_000)
        let tenantIdle = try milliseconds("MINIBAAS_TENANT_IDLE_MS", default: 300_000, range: 1000...86_400_000)
        _ = try tasksOnEventLoops(env("MINIBAAS_TASK_EXECUTOR"))
        let storageIO = env("MINIBAAS_STORAGE_IO")?.lowercased() ?? "auto"
        switch storageIO {
        case "auto", "posix", "uring": break
        default: throw .init("MB900: MINIBAAS_STORAGE_IO must be auto, uring or posix; got '\(storageIO)'")
        }
        var storageS3: S3BlobStore.Settings?
        switch env("MINIBAAS_STORAGE_BACKEND")?.lowercased() {
        case nil, "local": break
        case "s3":
            func required(_ name: String) throws(ConfigurationError) -> String {
                guard let value = env(name) else { throw .init("MB900: MINIBAAS_STORAGE_BACKEND=s3 needs \(name)") }
                return value
            }
            let endpoint = try required("MINIBAAS_STORAGE_S3_ENDPOINT")
            guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw .init("MB900: MINIBAAS_STORAGE_S3_ENDPOINT must be an http(s) URL; got '\(endpoint)'")
            }
            storageS3 = S3BlobStore.Settings(
                endpoint: endpoint, region: env("MINIBAAS_STORAGE_S3_REGION") ?? "us-east-1", bucket: try required("MINIBAAS_STORAGE_S3_BUCKET"),
                accessKeyID: try required("MINIBAAS_STORAGE_S3_ACCESS_KEY_ID"), secretAccessKey: try required("MINIBAAS_STORAGE_S3_SECRET_ACCESS_KEY"))
        case let other?:
            throw .init("MB900: MINIBAAS_STORAGE_BACKEND must be local or s3; got '\(other)'")
        }
        let outbound: OutboundPolicy
        do {
            outbound = try OutboundPolicy(allowList: env("MINIBAAS_OUTBOUND_ALLOW_CIDRS"))
        } catch {
            throw .init(error.description)
        }
        func wholeNumber(_ name: String, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            let number = env(name).map { Int($0) ?? -1 } ?? value
            guard range.contains(number) else { throw .init("\(name) must be a whole number in [\(range.lowerBound), \(range.upperBound)]") }
            return number
        }
        let jobSlots = try wholeNumber("MINIBAAS_JOB_SLOTS", default: 256, range: 1...10_000)
        let hostedPoolSize = try wholeNumber("MINIBAAS_HOSTED_POOL_SIZE", default: 32, range: 1...1_000)
        let attempts = (env("MINIBAAS_SIGNIN_ATTEMPTS") ?? "10,60").split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) ?? -1 }
        guard attempts.count == 2, attempts.allSatisfy({ (1...10_000_000).contains($0) }) else {
            throw .init("MINIBAAS_SIGNIN_ATTEMPTS must be two whole numbers in [1, 10000000], per account and per address, like 10,60")
        }
        var sentryDSN: SentryDSN?
        if let text = env("MINIBAAS_SENTRY_DSN") {
            do { sentryDSN = try SentryDSN(text) } catch let error as SentryDSN.Malformed { throw .init(error.description) } catch { throw .init("MINIBAAS_SENTRY_DSN: \(error)") }
        }
        let storageShared = ["1", "true", "yes"].contains(env("MINIBAAS_STORAGE_SHARED")?.lowercased() ?? "")
        var configuration = NodeConfiguration(
            host: host, port: resolvedPort, dataDir: dataDir ?? env("MINIBAAS_DATA_DIR") ?? "./.minibaas", databaseURL: databaseURL,
            hostedDatabaseURL: hostedDatabaseURL, redisURL: redisURL, adminToken: adminToken, masterKey: masterKey, baseDomain: baseDomain, nodeID: nodeID,
            publicURL: publicURL, logLevel: level, shutdownGrace: .seconds(10), advertiseURL: advertiseURL,
            heartbeatInterval: heartbeat, leaseTTL: leaseTTL, outageGrace: outageGrace, forwarding: forwarding, redisPrefix: redisPrefix,
            cacheTTL: cacheTTL)
        configuration.storageDir = env("MINIBAAS_STORAGE_DIR")
        configuration.storageShared = storageShared
        configuration.storageIO = storageIO
        configuration.storageS3 = storageS3
        configuration.outbound = outbound
        configuration.jobSlots = jobSlots
        configuration.hostedPoolSize = hostedPoolSize
        configuration.signInAttempts = (attempts[0], attempts[1])
        configuration.sentryDSN = sentryDSN
        configuration.sentryEnvironment = env("MINIBAAS_SENTRY_ENVIRONMENT")
        configuration.tenantIdle = tenantIdle
        return configuration
    }

    /// `MINIBAAS_TASK_EXECUTOR`: Swift tasks on NIO's event loops (`event-loops`, the default) or
    /// on Swift's own global pool (`global`). Installed by `MiniBaasCommand.main` before anything
    /// runs; checked again here so a bad value stops start-up with the other configuration errors.
    static func tasksOnEventLoops(_ value: String?) throws(ConfigurationError) -> Bool {
        switch value?.trimmingCharacters(in: .whitespaces).lowercased() {
        case nil, "", "event-loops": return true
        case "global": return false
        case let other?: throw .init("MINIBAAS_TASK_EXECUTOR must be event-loops or global; got '\(other)'")
        }
    }

    private static func defaultNodeID() -> String {
        let hostname = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let cleaned = hostname.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return "\(cleaned.isEmpty ? "node" : cleaned)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }
}

struct ConfigurationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
