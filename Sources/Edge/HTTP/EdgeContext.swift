import Hummingbird
import Logging
import NIOCore
import Tenancy

/// What a request carries through the edge: its id, and once resolved its tenant and caller.
struct EdgeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var requestID: String = ""
    var tenant: TenantSupervisor?
    var caller: Caller?
    /// The peer's IP address, for per-address throttles; "unknown" when the channel has none.
    let remoteAddress: String

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Bodies are bounded by the tenant's limit in the tenant gate and by `AdminBody` for admin
    /// routes; this only covers Hummingbird's own decoding helpers.
    var maxUploadSize: Int { 1 << 20 }
}

/// The authenticated caller of a tenant route.
struct Caller: Sendable {
    /// `anon`, `authenticated`, `service_role`, or a role named by the token.
    var role: String
    var claims: JSONObject

    var isServiceRole: Bool { role == "service_role" }
}

import Runtime
