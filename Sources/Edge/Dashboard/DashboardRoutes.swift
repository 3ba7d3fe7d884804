import Crypto
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime

/// The operators' web dashboard at `/_/`: one page and its script and style, compiled into the
/// binary (SwiftPM's `embedInCode`), so the node serves it offline with no CDN and no files
/// beside the executable. The page holds no tenant data; it signs in with the admin token and then
/// uses only the public admin and tenant APIs, like any other client.
struct DashboardRoutes {
    /// One embedded file, with its content type and a digest for conditional requests.
    struct Asset: Sendable {
        let bytes: ByteBuffer
        let contentType: String
        let etag: String

        init(_ bytes: [UInt8], contentType: String) {
            self.bytes = ByteBuffer(bytes: bytes)
            self.contentType = contentType
            self.etag = "\"" + Hex.encode(Array(SHA256.hash(data: bytes)).prefix(12)) + "\""
        }
    }

    static let page = Asset(PackageResources.index_html, contentType: "text/html; charset=utf-8")
    static let script = Asset(PackageResources.app_js, contentType: "text/javascript; charset=utf-8")
    static let style = Asset(PackageResources.app_css, contentType: "text/css; charset=utf-8")

    /// Scripts and styles only from the node itself, requests only to it, never framed: the page
    /// handles the admin token, so nothing foreign may run beside it.
    static let securityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private static let referrerPolicy = HTTPField.Name("Referrer-Policy")!

    func register(on router: Router<EdgeContext>) {
        // Hummingbird matches `/_` and `/_/` alike; the page names its assets by absolute paths.
        router.get("_") { request, _ in Self.serve(Self.page, request) }
        router.get("_/app.js") { request, _ in Self.serve(Self.script, request) }
        router.get("_/app.css") { request, _ in Self.serve(Self.style, request) }
    }

    static func serve(_ asset: Asset, _ request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache",
            .contentSecurityPolicy: securityPolicy, .xContentTypeOptions: "nosniff",
        ]
        headers[Self.referrerPolicy] = "no-referrer"
        if request.headers.value(.ifNoneMatch) == asset.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.bytes))
    }
}
