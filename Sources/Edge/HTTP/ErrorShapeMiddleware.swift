import Hummingbird

/// Turns Hummingbird's own errors — including "no route", which the router raises before any
/// handler runs — into the public error shape, so every error body looks the same.
struct ErrorShapeMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw APIError(error)
        }
    }
}
