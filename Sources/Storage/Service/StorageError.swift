/// A storage refusal as Supabase Storage words it: `{"statusCode","error","code","message"}`,
/// with the HTTP status equal to `statusCode` (storage3 reads `error` as the code and `statusCode`
/// as the status; `exists()` is false only for 404 with error `not_found`).
public struct StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let error: String
    public let code: String
    public let message: String

    public init(status: Int, error: String, code: String, message: String) {
        self.status = status
        self.error = error
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func objectNotFound() -> StorageError {
        StorageError(status: 404, error: "not_found", code: "NoSuchKey", message: "Object not found")
    }
    public static func bucketNotFound(_ id: String) -> StorageError {
        StorageError(status: 404, error: "Bucket not found", code: "NoSuchBucket", message: "Bucket '\(id)' not found")
    }
    public static func duplicateObject() -> StorageError {
        StorageError(status: 409, error: "Duplicate", code: "Duplicate", message: "The resource already exists")
    }
    public static func duplicateBucket(_ id: String) -> StorageError {
        StorageError(status: 409, error: "Duplicate", code: "BucketAlreadyExists", message: "Bucket '\(id)' already exists")
    }
    public static func bucketNotEmpty(_ id: String) -> StorageError {
        StorageError(status: 409, error: "Bucket not empty", code: "ResourceNotEmpty", message: "Bucket '\(id)' still holds objects: empty it first")
    }
    public static func invalidKey(_ why: String) -> StorageError {
        StorageError(status: 400, error: "Invalid Input", code: "InvalidKey", message: why)
    }
    public static func invalidBucketName(_ why: String) -> StorageError {
        StorageError(status: 400, error: "Invalid Input", code: "InvalidBucketName", message: why)
    }
    public static func invalidRequest(_ why: String) -> StorageError {
        StorageError(status: 400, error: "Invalid Input", code: "InvalidRequest", message: why)
    }
    public static func invalidSignature(_ why: String) -> StorageError {
        StorageError(status: 400, error: "InvalidSignature", code: "InvalidSignature", message: why)
    }
    public static func accessDenied(_ why: String) -> StorageError {
        StorageError(status: 403, error: "Unauthorized", code: "AccessDenied", message: why)
    }
    public static func unauthorized(_ why: String) -> StorageError {
        StorageError(status: 401, error: "Unauthorized", code: "InvalidJWT", message: why)
    }
    public static func entityTooLarge(limit: Int) -> StorageError {
        StorageError(status: 413, error: "Payload too large", code: "EntityTooLarge", message: "The object exceeded the maximum allowed size of \(limit) bytes")
    }
    public static func quotaExceeded(_ why: String) -> StorageError {
        StorageError(status: 413, error: "Payload too large", code: "QuotaExceeded", message: why)
    }
    public static func invalidMimeType(_ type: String) -> StorageError {
        StorageError(status: 415, error: "invalid_mime_type", code: "InvalidMimeType", message: "mime type \(type) is not supported")
    }
    public static func rangeNotSatisfiable(size: Int) -> StorageError {
        StorageError(status: 416, error: "Range Not Satisfiable", code: "InvalidRange", message: "The range is outside the object's \(size) bytes")
    }
    public static func preconditionFailed() -> StorageError {
        StorageError(status: 412, error: "Precondition Failed", code: "PreconditionFailed", message: "The object's ETag does not match If-Match")
    }
    public static func conflict() -> StorageError {
        StorageError(status: 409, error: "Conflict", code: "ConcurrentUpdate", message: "The object changed while this request ran; retry")
    }
    public static func backendUnavailable(_ why: String) -> StorageError {
        StorageError(status: 503, error: "Service Unavailable", code: "MB903", message: why)
    }
    public static func internalError(_ requestID: String) -> StorageError {
        StorageError(status: 500, error: "internal", code: "InternalError", message: "internal error (request \(requestID))")
    }
}
