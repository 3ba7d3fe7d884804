import Hummingbird
import Logging
import NIOCore
import Tenancy
import TenantRuntime

/// What a request carries through the edge: its id, and once resolved its tenant and caller.
struct EdgeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var requestID: String = ""
    var tenant: TenantTree?
    var caller: Caller?
    /// Whether the request carried an `apikey` or `Authorization` (storage serves some routes
    /// without keys).
    var presentedKey = false
    /// The peer's IP address, for per-address throttles; "unknown" when the channel has none.
    /// Formatted only when asked (few routes do), from the address taken when the request began:
    /// a connection that has closed since no longer knows its peer, and a login throttled after
    /// its client hung up must still count against that client's address.
    var remoteAddress: String { peer?.ipAddress ?? "unknown" }
    private let peer: SocketAddress?
    /// The request's connection (storage transfers close it when they fall silent).
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.peer = source.channel.remoteAddress
    }

    /// Bodies are bounded by the tenant's limit in the tenant gate and by `AdminBody` for admin
    /// routes; this only covers Hummingbird's own decoding helpers.
    var maxUploadSize: Int { 1 << 20 }
}
