/// The tenant's object storage: the tenant's buckets, uploads and image transforms run here. An
/// empty slot until that feature lands: it is supervised, shown on the supervisor endpoint and
/// stopped with the tree like every other subsystem.
public final class StorageSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor

    init(supervisor: SubsystemSupervisor) {
        self.supervisor = supervisor
    }
}
