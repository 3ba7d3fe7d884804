import Crypto
import Foundation

/// AWS Signature Version 4 as S3 uses it: in the `Authorization` header or in a presigned URL's
/// query. Verification rebuilds the canonical request from what arrived and compares signatures
/// in constant time; signing (for the S3 backend and tests) builds the same string.
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let streamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    public static let streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    public static let streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    public static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// How far a header-signed request's date may be from ours (S3's RequestTimeTooSkewed).
    public static let allowedSkew: TimeInterval = 15 * 60

    /// What arrived: the method, the raw (still percent-encoded) path and query, the headers.
    public struct Request: Sendable {
        public var method: String
        public var rawPath: String
        public var rawQuery: String
        /// Lowercased names; repeated headers joined with ",".
        public var headers: [String: String]
        public init(method: String, rawPath: String, rawQuery: String, headers: [String: String]) {
            self.method = method
            self.rawPath = rawPath
            self.rawQuery = rawQuery
            self.headers = headers
        }
    }

    /// A verified request: who signed it and what its body must be.
    public struct Verified: Sendable {
        public let accessKeyID: String
        public let scope: String
        public let amzDate: String
        public let signingKey: [UInt8]
        public let seedSignature: String
        /// The body's declared SHA-256 (hex), `UNSIGNED-PAYLOAD` or a streaming mode.
        public let payloadHash: String
        public let presigned: Bool
    }

    struct Credential {
        let accessKeyID: String
        let date: String
        let region: String
        let service: String
        var scope: String { "\(date)/\(region)/\(service)/aws4_request" }
    }

    /// Checks the signature; `secret` answers the secret of an access key id (nil: unknown).
    public static func verify(_ request: Request, now: Date = Date(), secret: (String) async throws -> String?) async throws -> Verified {
        let query = parseQuery(request.rawQuery)
        if query.contains(where: { $0.0 == "AWSAccessKeyId" }) { return try await verifyPresignedV2(request, query: query, now: now, secret: secret) }
        let presigned = query.contains { $0.0 == "X-Amz-Algorithm" }
        let credentialText: String, signedHeaders: [String], signature: String, amzDate: String, payloadHash: String
        if presigned {
            func value(_ name: String) throws -> String {
                guard let found = query.first(where: { $0.0 == name })?.1 else { throw S3Error.accessDenied("the presigned URL lacks \(name)") }
                return found
            }
            guard try value("X-Amz-Algorithm") == algorithm else { throw S3Error.invalidArgument("only AWS4-HMAC-SHA256 is supported") }
            credentialText = try value("X-Amz-Credential")
            signedHeaders = try value("X-Amz-SignedHeaders").split(separator: ";").map(String.init)
            signature = try value("X-Amz-Signature")
            amzDate = try value("X-Amz-Date")
            guard let expires = Int(try value("X-Amz-Expires")), (1...604_800).contains(expires) else {
                throw S3Error.invalidArgument("X-Amz-Expires must be 1 to 604800 seconds")
            }
            guard let signedAt = parseDate(amzDate) else { throw S3Error.accessDenied("X-Amz-Date is not a date") }
            guard now.timeIntervalSince(signedAt) <= Double(expires) else { throw S3Error.accessDenied("Request has expired") }
            guard signedAt.timeIntervalSince(now) <= allowedSkew else { throw S3Error.accessDenied("the presigned URL is dated in the future") }
            payloadHash = unsignedPayload
        } else {
            guard let authorization = request.headers["authorization"], authorization.hasPrefix(algorithm + " ") else {
                throw S3Error.accessDenied("the request is not signed with AWS Signature Version 4")
            }
            var parts: [String: String] = [:]
            for item in authorization.dropFirst(algorithm.count + 1).split(separator: ",") {
                let pair = item.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if pair.count == 2 { parts[String(pair[0])] = String(pair[1]) }
            }
            guard let credential = parts["Credential"], let headers = parts["SignedHeaders"], let given = parts["Signature"] else {
                throw S3Error.accessDenied("the Authorization header lacks Credential, SignedHeaders or Signature")
            }
            credentialText = credential
            signedHeaders = headers.split(separator: ";").map(String.init)
            signature = given
            guard let date = request.headers["x-amz-date"] ?? request.headers["date"] else { throw S3Error.accessDenied("the request has no X-Amz-Date") }
            amzDate = date
            guard let signedAt = parseDate(amzDate) else { throw S3Error.accessDenied("X-Amz-Date is not a date") }
            guard abs(signedAt.timeIntervalSince(now)) <= allowedSkew else {
                throw S3Error(status: 403, code: "RequestTimeTooSkewed", message: "The difference between the request time and the server's time is too large.")
            }
            payloadHash = request.headers["x-amz-content-sha256"] ?? unsignedPayload
        }
        let credential = try parseCredential(credentialText)
        guard credential.service == "s3", amzDate.hasPrefix(credential.date) else { throw S3Error.accessDenied("the credential scope does not match the request") }
        guard signedHeaders.contains("host") else { throw S3Error.accessDenied("the Host header must be signed") }
        guard let key = try await secret(credential.accessKeyID) else { throw S3Error.invalidAccessKey() }
        let signingKey = signingKey(secret: key, date: credential.date, region: credential.region)
        let canonical = canonicalRequest(request, query: query.filter { $0.0 != "X-Amz-Signature" }, signedHeaders: signedHeaders, payloadHash: payloadHash)
        let expected = hex(hmac(signingKey, stringToSign(amzDate: amzDate, scope: credential.scope, canonicalRequest: canonical)))
        guard constantTimeEqual(expected, signature.lowercased()) else {
            throw S3Error.signatureMismatch("The request signature we calculated does not match the signature you provided. Check your key and signing method.")
        }
        return Verified(
            accessKeyID: credential.accessKeyID, scope: credential.scope, amzDate: amzDate, signingKey: signingKey, seedSignature: expected,
            payloadHash: payloadHash, presigned: presigned)
    }

    /// Subresources a Version 2 signature covers, besides the path.
    static let v2Subresources: Set<String> = [
        "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy", "requestPayment", "tagging", "torrent",
        "uploadId", "uploads", "versionId", "versioning", "versions", "website", "response-cache-control", "response-content-disposition",
        "response-content-encoding", "response-content-language", "response-content-type", "response-expires",
    ]

    /// Presigned URLs in Signature Version 2 (`AWSAccessKeyId`, `Expires`, `Signature`): what
    /// boto3 makes by default for a custom endpoint. HMAC-SHA1 over the method, the content
    /// type and MD5 headers, the expiry, the `x-amz-*` headers and the resource.
    static func verifyPresignedV2(_ request: Request, query: [(String, String)], now: Date, secret: (String) async throws -> String?) async throws -> Verified {
        func value(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
        guard let accessKeyID = value("AWSAccessKeyId"), let signature = value("Signature"), let expiresText = value("Expires"),
            let expires = Double(expiresText)
        else { throw S3Error.accessDenied("the presigned URL lacks AWSAccessKeyId, Expires or Signature") }
        guard expires > now.timeIntervalSince1970 else { throw S3Error.accessDenied("Request has expired") }
        guard let key = try await secret(accessKeyID) else { throw S3Error.invalidAccessKey() }
        let amzHeaders = request.headers.filter { $0.key.hasPrefix("x-amz-") }.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)\n" }.joined()
        let subresources = query.filter { v2Subresources.contains($0.0) }.sorted { $0.0 < $1.0 }
            .map { $0.1.isEmpty ? $0.0 : "\($0.0)=\($0.1)" }.joined(separator: "&")
        // botocore signs the resource as `/bucket/key`, without the endpoint's own path; other
        // clients sign the whole path. Either is the same resource here.
        var paths = [request.rawPath]
        if let marker = request.rawPath.range(of: "/storage/v1/s3/") { paths.append("/" + request.rawPath[marker.upperBound...]) }
        let head = [request.method, request.headers["content-md5"] ?? "", request.headers["content-type"] ?? "", expiresText].joined(separator: "\n")
        let matched = paths.contains { path in
            let stringToSign = head + "\n" + amzHeaders + path + (subresources.isEmpty ? "" : "?" + subresources)
            let expected = Data(HMAC<Insecure.SHA1>.authenticationCode(for: Array(stringToSign.utf8), using: SymmetricKey(data: Array(key.utf8))))
                .base64EncodedString()
            return constantTimeEqual(expected, signature)
        }
        guard matched else {
            throw S3Error.signatureMismatch("The request signature we calculated does not match the signature you provided. Check your key and signing method.")
        }
        return Verified(accessKeyID: accessKeyID, scope: "", amzDate: "", signingKey: [], seedSignature: "", payloadHash: unsignedPayload, presigned: true)
    }

    /// Signs a request in its `Authorization` header (the S3 backend's client, and tests).
    public static func authorization(
        _ request: Request, accessKeyID: String, secret: String, region: String, amzDate: String, payloadHash: String
    ) -> String {
        let date = String(amzDate.prefix(8))
        let scope = "\(date)/\(region)/s3/aws4_request"
        let signedHeaders = request.headers.keys.sorted()
        let canonical = canonicalRequest(request, query: parseQuery(request.rawQuery), signedHeaders: signedHeaders, payloadHash: payloadHash)
        let signature = hex(hmac(signingKey(secret: secret, date: date, region: region), stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)))
        return "\(algorithm) Credential=\(accessKeyID)/\(scope), SignedHeaders=\(signedHeaders.joined(separator: ";")), Signature=\(signature)"
    }

    static func canonicalRequest(_ request: Request, query: [(String, String)], signedHeaders: [String], payloadHash: String) -> String {
        let path = request.rawPath.isEmpty ? "/" : request.rawPath
        let canonicalPath = path.split(separator: "/", omittingEmptySubsequences: false)
            .map { encode(String($0).removingPercentEncoding ?? String($0)) }
            .joined(separator: "/")
        let encodedQuery: [(name: String, value: String)] = query.map { (encode($0.0), encode($0.1)) }
        let sortedQuery = encodedQuery.sorted { left, right in left.name == right.name ? left.value < right.value : left.name < right.name }
        let canonicalQuery = sortedQuery.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        var headers = ""
        for name in signedHeaders {
            let value = (request.headers[name] ?? "").trimmingCharacters(in: .whitespaces)
            // Runs of spaces inside a value count as one.
            let folded = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            headers += "\(name):\(folded)\n"
        }
        return [request.method, canonicalPath, canonicalQuery, headers, signedHeaders.joined(separator: ";"), payloadHash].joined(separator: "\n")
    }

    static func stringToSign(amzDate: String, scope: String, canonicalRequest: String) -> String {
        [algorithm, amzDate, scope, hex(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")
    }

    public static func signingKey(secret: String, date: String, region: String) -> [UInt8] {
        var key = hmac(Array("AWS4\(secret)".utf8), date)
        key = hmac(key, region)
        key = hmac(key, "s3")
        return hmac(key, "aws4_request")
    }

    /// The signature of one aws-chunked chunk, chained from the previous one.
    public static func chunkSignature(signingKey: [UInt8], amzDate: String, scope: String, previous: String, chunkHash: String) -> String {
        hex(hmac(signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, emptyHash, chunkHash].joined(separator: "\n")))
    }

    /// The signature of an aws-chunked body's trailing headers.
    public static func trailerSignature(signingKey: [UInt8], amzDate: String, scope: String, previous: String, trailerHash: String) -> String {
        hex(hmac(signingKey, ["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, previous, trailerHash].joined(separator: "\n")))
    }

    static func parseCredential(_ text: String) throws -> Credential {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[4] == "aws4_request", !parts[0].isEmpty else { throw S3Error.accessDenied("the credential is malformed") }
        return Credential(accessKeyID: parts[0], date: parts[1], region: parts[2], service: parts[3])
    }

    /// `a=1&b&c=%20` → [(a, 1), (b, ""), (c, " ")]: names and values percent-decoded.
    public static func parseQuery(_ raw: String) -> [(String, String)] {
        raw.split(separator: "&", omittingEmptySubsequences: true).map { item in
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0]).removingPercentEncoding ?? String(pair[0])
            let value = pair.count > 1 ? (String(pair[1]).removingPercentEncoding ?? String(pair[1])) : ""
            return (name, value)
        }
    }

    static func parseDate(_ text: String) -> Date? {
        guard text.count == 16 else { return nil }
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        let digits = Array(text)
        func number(_ range: Range<Int>) -> Int? { Int(String(digits[range])) }
        guard digits[8] == "T", digits[15] == "Z", let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
            let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15)
        else { return nil }
        (components.year, components.month, components.day, components.hour, components.minute, components.second) = (year, month, day, hour, minute, second)
        return Calendar(identifier: .gregorian).date(from: components)
    }

    /// `yyyyMMdd'T'HHmmss'Z'`.
    public static func amzDate(_ date: Date) -> String {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// AWS's URI encoding: unreserved characters stay, everything else is %XX (upper case).
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if isUnreserved(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        let isLetter = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        let isDigit = byte >= 0x30 && byte <= 0x39
        return isLetter || isDigit || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
    }

    static func hmac(_ key: [UInt8], _ text: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key)))
    }

    public static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
