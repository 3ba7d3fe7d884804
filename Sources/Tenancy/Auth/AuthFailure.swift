/// An auth request that cannot be served, with GoTrue's error code so that the official clients
/// raise the same exceptions they would against Supabase.
public struct AuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var hint: String?
    public var retryAfter: Int?
    /// GoTrue's `weak_password.reasons`, for the clients' AuthWeakPasswordError.
    public var weakPasswordReasons: [String]?

    public init(_ status: Int, _ code: String, _ message: String, hint: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(code) \(status): \(message)" }

    static let invalidCredentials = AuthFailure(400, "invalid_credentials", "Invalid login credentials")
    static let emailNotConfirmed = AuthFailure(400, "email_not_confirmed", "Email not confirmed")
    static let userExists = AuthFailure(422, "user_already_exists", "User already registered")
    static let emailExists = AuthFailure(422, "email_exists", "A user with this email address has already been registered")
    static let refreshTokenNotFound = AuthFailure(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    static let refreshTokenReused = AuthFailure(
        400, "refresh_token_already_used", "Invalid Refresh Token: Already Used",
        hint: "the session was revoked because a spent refresh token was presented again")
    static let otpExpired = AuthFailure(403, "otp_expired", "Email link is invalid or has expired")
    static let badCodeVerifier = AuthFailure(400, "bad_code_verifier", "code challenge does not match previously saved code verifier")
    static let flowStateNotFound = AuthFailure(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
    static let noAuthorization = AuthFailure(401, "no_authorization", "This endpoint requires a valid Bearer token of a signed-in user")
    static let sessionNotFound = AuthFailure(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    static let userNotFound = AuthFailure(404, "user_not_found", "User not found")
    static let mailUnavailable = AuthFailure(
        422, "email_provider_disabled", "This tenant cannot send e-mail, so sign-up needs autoconfirm",
        hint: "configure smtp or set autoconfirm with PUT /admin/v1/tenants/{slug}/auth")

    static func validation(_ message: String) -> AuthFailure { AuthFailure(400, "validation_failed", message) }
    static func throttled(retryAfter: Int) -> AuthFailure {
        var failure = AuthFailure(429, "over_request_rate_limit", "Too many attempts; try again in \(retryAfter) seconds")
        failure.retryAfter = retryAfter
        return failure
    }
    static func mailFailed(_ why: String) -> AuthFailure {
        AuthFailure(502, "email_send_failed", "Error sending the e-mail", hint: why)
    }
}
