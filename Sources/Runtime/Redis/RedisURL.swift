import Foundation

/// `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS).
public struct RedisURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    public var tls: Bool

    public init(_ text: String) throws(RedisError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme, scheme == "redis" || scheme == "rediss",
            let host = components.host, !host.isEmpty
        else { throw .unavailable("REDIS_URL must look like redis://[user:password@]host[:port][/db]") }
        self.host = host
        port = components.port ?? 6379
        username = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        password = components.password?.removingPercentEncoding
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard path.isEmpty || Int(path) != nil else { throw .unavailable("the database in REDIS_URL must be a number") }
        database = Int(path) ?? 0
        tls = scheme == "rediss"
    }
}
