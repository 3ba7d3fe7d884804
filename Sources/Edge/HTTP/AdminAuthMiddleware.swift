import Hummingbird
import Tenancy

/// Admin routes need `Authorization: Bearer <admin token>`, compared in constant time.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let token: AdminToken

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers.value(.authorization) else { throw APIError.adminUnauthorized }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", token.matches(String(parts[1])) else {
            throw APIError.adminUnauthorized
        }
        return try await next(request, context)
    }
}
