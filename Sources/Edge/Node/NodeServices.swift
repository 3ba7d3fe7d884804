import Connectors
import Foundation
import Logging
import Runtime
import Tenancy

/// What the edge's handlers share: the node's identity, its control plane, and the tenant trees.
struct NodeServices: Sendable {
    let configuration: NodeConfiguration
    let store: any ControlPlaneStore
    let secretBox: SecretBox
    let directory: TenantDirectory
    let adminToken: AdminToken
    let startedAt: Date
    let lifecycle: NodeLifecycle
    let logger: Logger

    var sourceCatalog: SourceCatalog { SourceCatalog(store: store, secretBox: secretBox, logger: logger) }

    func apiURL(for slug: String) -> String {
        "\(configuration.publicBaseURL)/t/\(slug)"
    }
}

/// Whether the node takes new work; flips once, when shutdown begins.
final class NodeLifecycle: @unchecked Sendable {
    private let lock = Lock()
    private var draining = false

    var isDraining: Bool { lock.withLock { draining } }
    func beginDraining() { lock.withLock { draining = true } }
}
