import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

extension RestAPI {
    func respond(read result: StatementResult, request: Request, prefer: Preferences, offset: Int) throws -> Response {
        var headers = HTTPFields()
        let total = result.total.map(String.init) ?? "*"
        headers[.contentRange] = result.count == 0 ? "*/\(total)" : "\(offset)-\(offset + result.count - 1)/\(total)"
        if let count = prefer.count { headers[.preferenceApplied] = "count=\(count.rawValue)" }
        var status = HTTPResponse.Status.ok
        if let totalCount = result.total, result.count < totalCount, result.count > 0 || offset > 0 { status = .partialContent }
        // A strong validator of the body the client would get (the representation depends on Accept).
        let body = result.body ?? "[]"
        var digest = SHA256()
        digest.update(utf8: body)
        digest.update(utf8: request.headers.value(.accept) ?? "")
        let tag = "\"" + digest.finalize().hex(prefix: 16) + "\""
        headers[.eTag] = tag
        if let candidates = request.headers.value(.ifNoneMatch),
            candidates == "*" || candidates.split(separator: ",").contains(where: {
                let candidate = $0.trimmingSpaces
                return candidate == tag || candidate == "W/" + tag
            })
        {
            return Response(status: .notModified, headers: [.eTag: tag])
        }
        if request.method == .head { return Response(status: status, headers: headers) }
        return try bodyResponse(body, status: status, headers: headers, request: request, rows: result.count)
    }

    func writeResponse(_ result: StatementResult, representation: Bool, request: Request, prefer: Preferences) throws -> Response {
        var headers = HTTPFields()
        headers[.contentRange] = result.count == 0 ? "*/*" : "0-\(result.count - 1)/*"
        if let applied = prefer.appliedForWrite(resolution: false, missing: false) { headers[.preferenceApplied] = applied }
        guard representation else { return Response(status: .noContent, headers: headers) }
        return try bodyResponse(result.body ?? "[]", status: .ok, headers: headers, request: request, rows: result.count)
    }

    static func wantsObject(_ request: Request) -> Bool {
        request.headers.value(.accept)?.lowercased().containsBytes("application/vnd.pgrst.object") ?? false
    }

    /// Writes the JSON body in the media type the client accepts: JSON, a single object, or CSV.
    func bodyResponse(_ body: String, status: HTTPResponse.Status, headers: HTTPFields, request: Request, rows: Int? = nil) throws -> Response {
        var headers = headers
        let accept = request.headers.value(.accept)?.lowercased() ?? "application/json"
        if accept.containsBytes("application/vnd.pgrst.object") {
            guard let rows, body.hasPrefix("[") else {
                headers[.contentType] = "application/vnd.pgrst.object+json; charset=utf-8"
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            guard rows == 1 else { throw APIError(RestError.singular(rows)) }
            headers[.contentType] = "application/vnd.pgrst.object+json; charset=utf-8"
            let object = String(body.dropFirst().dropLast())
            return Response(status: status == .partialContent ? .ok : status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: object)))
        }
        if accept.hasPrefix("text/csv") {
            headers[.contentType] = "text/csv; charset=utf-8"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: CSVWriter.csv(fromJSONArray: body))))
        }
        guard accept.containsBytes("json") || accept.containsBytes("*/*") || accept.isEmpty else {
            throw APIError(status: .notAcceptable, code: "PGRST107", message: "None of these media types are available: \(accept)")
        }
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

extension APIError {
    init(_ error: RestError) {
        self.init(
            status: HTTPResponse.Status(code: error.status), code: error.code, message: error.message, details: error.details, hint: error.hint)
    }
}

extension HTTPField.Name {
    static let prefer = HTTPField.Name("Prefer")!
    static let preferenceApplied = HTTPField.Name("Preference-Applied")!
    static let rangeUnit = HTTPField.Name("Range-Unit")!
}

/// CSV the way PostgREST writes it: a header row of the first object's keys, then one line a row.
enum CSVWriter {
    static func csv(fromJSONArray text: String) -> String {
        guard let rows = try? JSONValue.parse(Array(text.utf8)).arrayValue, let first = rows.first?.objectValue else { return "" }
        let keys = first.keys
        var out = keys.map(field).joined(separator: ",") + "\n"
        for row in rows {
            out += keys.map { key -> String in
                switch row[key] {
                case nil, .null?: return ""
                case .string(let value)?: return field(value)
                case let value?: return field(value.jsonString)
                }
            }.joined(separator: ",") + "\n"
        }
        return out
    }

    static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
