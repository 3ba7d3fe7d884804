import Foundation

/// An S3 refusal, answered as S3's XML error document with S3's code names (boto3 raises
/// `ClientError` with `Error.Code` from it).
public struct S3Error: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func accessDenied(_ why: String) -> S3Error { S3Error(status: 403, code: "AccessDenied", message: why) }
    public static func signatureMismatch(_ why: String) -> S3Error { S3Error(status: 403, code: "SignatureDoesNotMatch", message: why) }
    public static func invalidAccessKey() -> S3Error {
        S3Error(status: 403, code: "InvalidAccessKeyId", message: "The AWS access key Id you provided does not exist in our records.")
    }
    public static func badDigest(_ why: String) -> S3Error { S3Error(status: 400, code: "BadDigest", message: why) }
    public static func invalidArgument(_ why: String) -> S3Error { S3Error(status: 400, code: "InvalidArgument", message: why) }
    public static func invalidRequest(_ why: String) -> S3Error { S3Error(status: 400, code: "InvalidRequest", message: why) }
    public static func malformedXML() -> S3Error {
        S3Error(status: 400, code: "MalformedXML", message: "The XML you provided was not well-formed or did not validate against our published schema")
    }
    public static func noSuchUpload() -> S3Error {
        S3Error(status: 404, code: "NoSuchUpload", message: "The specified multipart upload does not exist.")
    }
    public static func invalidPart(_ why: String) -> S3Error { S3Error(status: 400, code: "InvalidPart", message: why) }

    /// Storage's own refusals in S3's words.
    public init(_ error: StorageError) {
        switch error.code {
        case "BucketAlreadyExists": self.init(status: error.status, code: "BucketAlreadyOwnedByYou", message: error.message)
        case "ResourceNotEmpty": self.init(status: error.status, code: "BucketNotEmpty", message: error.message)
        case "Duplicate": self.init(status: error.status, code: "PreconditionFailed", message: error.message)
        case "InvalidKey": self.init(status: 400, code: "InvalidArgument", message: error.message)
        case "InvalidMimeType": self.init(status: error.status, code: "InvalidArgument", message: error.message)
        case "InvalidJWT": self.init(status: 403, code: "AccessDenied", message: error.message)
        default: self.init(status: error.status, code: error.code, message: error.message)
        }
    }

    public func xml(resource: String, requestID: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>\(S3XML.escape(code))</Code><Message>\(S3XML.escape(message))</Message>"
            + "<Resource>\(S3XML.escape(resource))</Resource><RequestId>\(S3XML.escape(requestID))</RequestId></Error>"
    }
}
