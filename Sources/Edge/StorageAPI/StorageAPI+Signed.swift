import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Storage
import Tenancy

extension StorageAPI {
    /// Signed URLs last at most a week; upload URLs two hours, as Supabase's.
    static let maxExpiry = 7 * 24 * 3600
    static let uploadExpiry = 2 * 3600

    func sign(_ call: Call, _ bucket: String, _ name: String) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        let expiresIn = try Self.expiry(body["expiresIn"])
        let object = try await call.storage.object(bucket: bucket, name: name, access: call.access)
        // Transform options are fixed in the token: the URL renders exactly this variant.
        if let options = body["transform"]?.objectValue, let transform = try ImageTransform.parse(claims: options) {
            let token = call.signer.sign(
                url: "\(object.bucket)/\(object.name)", purpose: .download, expiresIn: expiresIn, extra: ["transform": .object(transform.claims)])
            return try Self.json(["signedURL": .string("/render/image/sign/\(Self.encodedPath(object.bucket, object.name))?token=\(token)")])
        }
        return try Self.json(["signedURL": .string(Self.signedPath(call, object, expiresIn: expiresIn))])
    }

    func signMany(_ call: Call, _ bucket: String) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        let expiresIn = try Self.expiry(body["expiresIn"])
        guard let paths = body["paths"]?.arrayValue, paths.allSatisfy({ $0.stringValue != nil }), paths.count <= 1000 else {
            throw StorageError.invalidRequest("the body needs paths: an array of at most 1000 object names")
        }
        var items: [JSONValue] = []
        for path in paths.compactMap(\.stringValue) {
            do {
                let object = try await call.storage.object(bucket: bucket, name: path, access: call.access)
                items.append(["error": .null, "path": .string(path), "signedURL": .string(Self.signedPath(call, object, expiresIn: expiresIn))])
            } catch let error as StorageError where error.status == 404 || error.status == 400 {
                items.append(["error": "Either the object does not exist or you do not have access to it", "path": .string(path), "signedURL": .null])
            }
        }
        return try Self.json(.array(items))
    }

    func signedDownload(_ call: Call, _ bucket: String, _ name: String) async throws -> Response {
        guard let token = call.query("token") else { throw StorageError.invalidSignature("the signed URL has no token") }
        let name = try StorageNames.object(name)
        _ = try call.signer.verify(token, url: "\(bucket)/\(name)", purpose: .download)
        return try await serve(call, try await call.storage.signedObject(bucket: bucket, name: name))
    }

    func signUpload(_ call: Call, _ bucket: String, _ name: String) async throws -> Response {
        try call.requireKey()
        let upsert = Self.flag(call.request.headers[HTTPField.Name("x-upsert")!])
        // Everything a direct upload would check, now: the name, the bucket, the policy, a free name.
        let request = TenantStorage.UploadRequest(bucket: bucket, name: name, upsert: upsert, contentType: "application/octet-stream", cacheControl: "")
        let prepared = try await call.storage.prepareUpload(request, access: call.access, checkingType: false)
        var claims: JSONObject = ["upsert": .bool(upsert)]
        if let owner = call.access.claims["sub"] { claims["owner"] = owner }
        let token = call.signer.sign(url: "\(bucket)/\(prepared.request.name)", purpose: .upload, expiresIn: Self.uploadExpiry, extra: claims)
        return try Self.json([
            "url": .string("/object/upload/sign/\(Self.encodedPath(bucket, prepared.request.name))?token=\(token)"),
            "token": .string(token),
        ])
    }

    /// An upload to a signed upload URL: the policy was decided when the URL was signed; the
    /// object's owner is whoever signed it.
    func signedUpload(_ call: Call, _ bucket: String, _ name: String) async throws -> Response {
        guard let token = call.query("token") else { throw StorageError.invalidSignature("the signed upload URL has no token") }
        let name = try StorageNames.object(name)
        let claims = try call.signer.verify(token, url: "\(bucket)/\(name)", purpose: .upload)
        var asSigner: JSONObject = [:]
        if let owner = claims["owner"] { asSigner["sub"] = owner }
        let access = Access(role: "service_role", claims: asSigner, policies: [])
        let object = try await receive(call, bucket: bucket, name: name, upsert: claims["upsert"]?.boolValue ?? false, access: access)
        return try Self.json(["Id": .string(object.id), "Key": .string("\(object.bucket)/\(object.name)")])
    }

    static func signedPath(_ call: Call, _ object: StoredObject, expiresIn: Int) -> String {
        let token = call.signer.sign(url: "\(object.bucket)/\(object.name)", purpose: .download, expiresIn: expiresIn)
        return "/object/sign/\(encodedPath(object.bucket, object.name))?token=\(token)"
    }

    static func encodedPath(_ bucket: String, _ name: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~!$&'()*+,;=:@"))
        return ([bucket] + name.split(separator: "/").map(String.init))
            .map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0 }
            .joined(separator: "/")
    }

    /// storage3 sends `expiresIn` as a string of seconds; supabase-js as a number.
    static func expiry(_ value: JSONValue?) throws -> Int {
        let seconds: Int64?
        switch value {
        case .string(let text)?: seconds = Int64(text)
        case let other?: seconds = other.intValue
        case nil: seconds = nil
        }
        guard let seconds, (1...Int64(maxExpiry)).contains(seconds) else {
            throw StorageError.invalidRequest("expiresIn must be a number of seconds from 1 to \(maxExpiry)")
        }
        return Int(seconds)
    }
}
