import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Runtime

/// The operator's CLI talking to a node's admin API: `--url` (default http://127.0.0.1:8080) and
/// the token in `MINIBAAS_ADMIN_TOKEN`. Every failure becomes one line on stderr and an exit
/// code: 2 for usage (a missing token), 1 for everything the node or network answered.
struct AdminClient {
    let base: String
    let token: String

    /// Exit codes as the contract states them.
    struct Failure: Error, CustomStringConvertible {
        let code: Int32
        let description: String
    }

    init(url: String) throws {
        guard let token = ProcessInfo.processInfo.environment["MINIBAAS_ADMIN_TOKEN"], !token.isEmpty else {
            throw Failure(code: 2, description: "MINIBAAS_ADMIN_TOKEN is not set: the admin API needs the node's admin token")
        }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
            throw Failure(code: 2, description: "--url '\(url)' is not an http(s) URL")
        }
        self.base = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.token = token
    }

    /// The node's JSON answer to `method path` (under /admin/v1), or a failure naming the
    /// server's code and message.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        try await send(method, "/admin/v1" + path, bearer: token, body: body, refusal: "the node refused the admin token")
    }

    /// A call to a tenant's own API (`/t/{slug}{path}`) as its service role, for what only that API
    /// manages (storage buckets); the service key comes from the admin API.
    func tenantCall(_ method: HTTPMethod, slug: String, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        guard let key = try await call(.GET, "/tenants/\(slug)")["serviceKey"]?.stringValue else {
            throw Failure(code: 1, description: "the node did not give tenant \(slug)'s service key")
        }
        return try await send(method, "/t/\(slug)" + path, bearer: key, apiKey: key, body: body, refusal: "the tenant refused its service key")
    }

    private func send(
        _ method: HTTPMethod, _ path: String, bearer: String, apiKey: String? = nil, body: JSONValue?, refusal: String
    ) async throws -> JSONValue {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(bearer)")
        if let apiKey { request.headers.add(name: "apikey", value: apiKey) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.encoded()))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
        } catch {
            throw Failure(code: 1, description: "cannot reach the node at \(base): \(Self.reason(error))")
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let value = bytes.readableBytes == 0 ? JSONValue.null : ((try? JSONValue.parse(bytes.readableBytesView)) ?? .null)
        guard (200..<300).contains(Int(response.status.code)) else {
            // The admin API's `code`; the storage API's `statusCode`/`error`.
            let code = value["code"]?.stringValue ?? value["statusCode"]?.stringValue ?? value["error"]?.stringValue ?? String(response.status.code)
            let message = value["message"]?.stringValue ?? response.status.reasonPhrase
            if response.status == .unauthorized { throw Failure(code: 1, description: "\(refusal) (\(code)): \(message)") }
            throw Failure(code: 1, description: "\(code) (HTTP \(response.status.code)): \(message)")
        }
        return value
    }

    static func reason(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectTimeout") || text.contains("deadlineExceeded") { return "no answer within 15 s" }
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return String(text.prefix(160))
    }
}

/// What the CLI prints: a table of columns, or the JSON as the node answered it.
enum CLIOutput {
    static func json(_ value: JSONValue) {
        print(String(decoding: value.encoded(), as: UTF8.self))
    }

    static func table(_ headers: [String], _ rows: [[String]]) {
        let widths = headers.indices.map { column in ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        print(line(headers))
        for row in rows { print(line(row)) }
    }

    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text)?: return text
        case .integer(let number)?: return String(number)
        case .number(let number)?: return String(number)
        case .bool(let flag)?: return flag ? "yes" : "no"
        case nil, .null?: return "-"
        case let other?: return String(decoding: other.encoded(), as: UTF8.self)
        }
    }

    /// A URL without its password (`postgresql://user:***@host/db`).
    static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.password != nil else { return url }
        parts.password = "***"
        return parts.string ?? url
    }
}

/// Asks before a destructive step: `--yes`, or the slug typed back on a terminal.
enum Confirmation {
    static func confirm(_ what: String, typing expected: String, yes: Bool) throws {
        if yes { return }
        guard isatty(STDIN_FILENO) == 1 else {
            throw AdminClient.Failure(code: 2, description: "refusing to \(what) without --yes (no terminal to confirm on)")
        }
        FileHandle.standardError.write(Data("To \(what), type '\(expected)': ".utf8))
        guard readLine()?.trimmingCharacters(in: .whitespaces) == expected else {
            throw AdminClient.Failure(code: 1, description: "not confirmed; nothing was changed")
        }
    }
}
