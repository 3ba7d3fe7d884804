import Connectors
import Hummingbird

extension APIError {
    /// A source registration's refusal, answered as it always was: its status, code, message,
    /// details and hint are the API's own (docs/errors.md).
    init(_ error: RegistrationError) {
        let status: HTTPResponse.Status = switch error.status {
        case 400: .badRequest
        case 404: .notFound
        case 409: .conflict
        case 422: .unprocessableContent
        // Any other with its number alone (the reason phrase is informational).
        default: HTTPResponse.Status(code: error.status)
        }
        self.init(status: status, code: error.code, message: error.message, details: error.details, hint: error.hint)
    }
}
