/// The tenant's search and vector indexes: the tenant's indexes and their builders run here. An
/// empty slot until that feature lands: it is supervised, shown on the supervisor endpoint and
/// stopped with the tree like every other subsystem.
public final class SearchSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor

    init(supervisor: SubsystemSupervisor) {
        self.supervisor = supervisor
    }
}
