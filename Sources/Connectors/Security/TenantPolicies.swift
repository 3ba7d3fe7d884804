import Tenancy

/// A tenant's policies, hung on its tree when it starts (a PUT restarts the tree).
public final class TenantPolicies: Sendable {
    public let policies: [Policy]
    public init(policies: [Policy]) { self.policies = policies }
}
