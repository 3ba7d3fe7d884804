import Storage

/// The tenant's object storage: its buckets, objects, uploads and signed URLs, over the node's
/// blob store and the control plane's rows. The subsystem's supervisor will own the tenant's
/// long-running storage work (image transforms, upload expiry) as it lands.
public final class StorageSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    /// nil on a node built without a blob store (some unit tests).
    public let service: TenantStorage?

    init(supervisor: SubsystemSupervisor, service: TenantStorage?) {
        self.supervisor = supervisor
        self.service = service
    }
}
