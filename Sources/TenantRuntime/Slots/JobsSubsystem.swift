/// The tenant's durable jobs (webhooks, cron, queues, e-mail, image work): their workers run here.
/// An empty slot until that feature lands: it is supervised, shown on the supervisor endpoint and
/// stopped with the tree like every other subsystem.
public final class JobsSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor

    init(supervisor: SubsystemSupervisor) {
        self.supervisor = supervisor
    }
}
