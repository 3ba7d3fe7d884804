/// A function's stdout read as WAGI's CGI response (contract "ABI"): header lines (`Name: value`,
/// LF or CRLF, at most 16 KiB), a blank line, then the body. `Status: 201 Created` sets the status;
/// no `Content-Type` means `application/octet-stream`; a `Location` alone means 302. Headers the
/// node owns (hop-by-hop, `content-length`, `x-minibaas-*`, `x-relay-error`, `sb-error-code`) are
/// dropped; a malformed block is MB863.
public struct CGIResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public static func == (lhs: CGIResponse, rhs: CGIResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.headers.map(\.name) == rhs.headers.map(\.name)
            && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    static let maxHeaderBytes = 16 * 1024

    static let dropped: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "x-relay-error", "sb-error-code",
    ]

    public init(parsing output: [UInt8]) throws(FunctionError) {
        // The end of the header block: the first empty line.
        var index = 0
        var lineStart = 0
        var lines: [ArraySlice<UInt8>] = []
        var bodyStart: Int?
        while index < output.count, index <= Self.maxHeaderBytes {
            if output[index] == 0x0A {
                var line = output[lineStart..<index]
                if line.last == 0x0D { line = line.dropLast() }
                if line.isEmpty {
                    bodyStart = index + 1
                    break
                }
                lines.append(line)
                lineStart = index + 1
            }
            index += 1
        }
        guard let bodyStart else {
            throw FunctionError.badHeaders(output.count > Self.maxHeaderBytes ? "no blank line within 16 KiB" : "no blank line after the headers")
        }
        var status: Int?
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw FunctionError.badHeaders("a header line without ':'")
            }
            let nameBytes = line[line.startIndex..<colon]
            guard !nameBytes.isEmpty, nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw FunctionError.badHeaders("a header name that is not a token")
            }
            let valueBytes = line[line.index(after: colon)...].drop { $0 == 0x20 || $0 == 0x09 }
            guard valueBytes.allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), valueBytes.last != 0x7F else {
                throw FunctionError.badHeaders("a header value with control characters")
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            let value = String(decoding: valueBytes, as: UTF8.self)
            let lower = name.lowercased()
            if lower == "status" {
                guard let code = Int(value.prefix { $0 != " " }), (100...599).contains(code) else {
                    throw FunctionError.badHeaders("Status is not a number from 100 to 599")
                }
                status = code
                continue
            }
            if Self.dropped.contains(lower) || lower.hasPrefix("x-minibaas-") { continue }
            headers.append((name, value))
        }
        let lowerNames = Set(headers.map { $0.name.lowercased() })
        if status == nil, lowerNames.contains("location"), headers.count == 1 { status = 302 }
        if !lowerNames.contains("content-type") { headers.append(("Content-Type", "application/octet-stream")) }
        self.status = status ?? 200
        self.headers = headers
        self.body = Array(output[bodyStart...])
    }
}
