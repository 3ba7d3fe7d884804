import HTTPTypes
import Hummingbird
import Runtime
import Tenancy

/// `{apiUrl}/auth/v1/admin/users…`: GoTrue's user administration, for the tenant's service role
/// only (as GoTrue: anyone else gets 403 `not_admin`). `supabase.auth.admin.list_users()`,
/// `create_user`, `get_user_by_id`, `update_user_by_id` and `delete_user` work unchanged.
extension AuthAPI {
    func registerAdmin(on keyed: RouterGroup<EdgeContext>) {
        keyed.get("admin/users", use: listUsers)
        keyed.post("admin/users", use: createUser)
        keyed.get("admin/users/:id", use: getUser)
        keyed.put("admin/users/:id", use: updateUserByID)
        keyed.delete("admin/users/:id", use: deleteUser)
    }

    @Sendable func listUsers(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await adminService(context)
        let query = request.uri.queryParameters
        let page = try Self.positive(query.get("page"), name: "page", default: 1)
        let perPage = try Self.positive(query.get("per_page"), name: "per_page", default: 50)
        let (users, total) = try await auth.adminListUsers(page: page, perPage: perPage)
        var headers: HTTPFields = [:]
        headers[Self.totalCount] = String(total)
        // GoTrue's pagination links, which supabase-js reads for `nextPage` and `lastPage`.
        let size = min(perPage, AuthService.adminPageLimit)
        let last = max(1, (total + size - 1) / size)
        var links: [String] = []
        if page < last { links.append("</admin/users?page=\(page + 1)&per_page=\(size)>; rel=\"next\"") }
        links.append("</admin/users?page=\(last)&per_page=\(size)>; rel=\"last\"")
        headers[Self.link] = links.joined(separator: ", ")
        return try jsonResponse(["users": .array(users.map(JSONValue.object)), "aud": "authenticated"], headers: headers)
    }

    @Sendable func createUser(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await adminService(context)
        let user = try await auth.adminCreateUser(try await Self.changes(request))
        return try jsonResponse(.object(user))
    }

    @Sendable func getUser(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await adminService(context)
        return try jsonResponse(.object(try await auth.adminUser(id: context.parameters.get("id") ?? "")))
    }

    @Sendable func updateUserByID(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await adminService(context)
        let user = try await auth.adminUpdateUser(id: context.parameters.get("id") ?? "", try await Self.changes(request))
        return try jsonResponse(.object(user))
    }

    @Sendable func deleteUser(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await adminService(context)
        try await auth.adminDeleteUser(id: context.parameters.get("id") ?? "")
        return try jsonResponse(.object([:]))
    }

    private func adminService(_ context: EdgeContext) async throws -> AuthService {
        guard context.caller?.role == "service_role" else { throw AuthFailure(403, "not_admin", "User not allowed") }
        return try await service(context)
    }

    private static func changes(_ request: Request) async throws -> AuthService.AdminChanges {
        let body = try await JSONBody.read(request)
        if try body.string("phone") != nil { throw AuthFailure.validationFailed("Phone users are not supported; use an e-mail address") }
        return AuthService.AdminChanges(
            email: try body.string("email"), password: try body.string("password"), emailConfirm: try body.bool("email_confirm"),
            userMetadata: try body.object("user_metadata") ?? body.object("data"), appMetadata: try body.object("app_metadata"))
    }

    private static func positive(_ text: String?, name: String, default fallback: Int) throws -> Int {
        // supabase-py sends `page=&per_page=` when none is asked for.
        guard let text, !text.isEmpty else { return fallback }
        guard let value = Int(text), value >= 1 else { throw AuthFailure.validationFailed("\(name) must be a positive integer") }
        return value
    }

    private static let totalCount = HTTPField.Name("X-Total-Count")!
    private static let link = HTTPField.Name("Link")!
}
