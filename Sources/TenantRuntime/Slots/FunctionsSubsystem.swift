/// The tenant's edge functions: the tenant's WebAssembly instances run here. An empty slot until
/// that feature lands: it is supervised, shown on the supervisor endpoint and stopped with the tree
/// like every other subsystem.
public final class FunctionsSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor

    init(supervisor: SubsystemSupervisor) {
        self.supervisor = supervisor
    }
}
