import Foundation
import Logging
import Runtime
import Tenancy
import TenantRuntime

/// Keeps the trees of tenants with job work running: tenants with webhooks or unsettled jobs are
/// placed (this node takes the lease where the placement says so) and their trees started at boot
/// and every few seconds after, so deliveries go out with nobody calling the tenant's API and a
/// dead owner's tenants resume on their new owner within a lease TTL and one round. Settled jobs
/// past their keep (7 days, 30 for the failed set) are pruned here too.
struct JobTenantsKeeper: Sendable {
    let node: NodeServices
    var interval: Duration = .seconds(5)
    var pruneInterval: Duration = .seconds(3600)

    func run() async {
        while node.lifecycle.boundPort == nil {
            do { try await Task.sleep(for: .milliseconds(10)) } catch { return }
        }
        var lastPrune = ContinuousClock.now - pruneInterval
        while !Task.isCancelled {
            await keepAll()
            if ContinuousClock.now - lastPrune >= pruneInterval {
                lastPrune = .now
                await prune()
            }
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }

    func keepAll() async {
        guard !node.lifecycle.isDraining else { return }
        let slugs: [String]
        do {
            slugs = try await node.store.tenantsWithJobWork()
        } catch {
            node.logger.warning("cannot list tenants with job work", metadata: ["error": .string("\(error)")])
            return
        }
        // A few at a time: placing a tenant may wait while a dead owner's lease lapses, and one
        // such wait must not hold up every other tenant's start.
        await withTaskGroup(of: Void.self) { group in
            var next = slugs.makeIterator()
            for _ in 0..<8 {
                guard let slug = next.next() else { break }
                group.addTask { await keep(slug) }
            }
            while await group.next() != nil {
                guard let slug = next.next() else { continue }
                group.addTask { await keep(slug) }
            }
        }
    }

    /// Starts the tenant's tree here if this node is (or becomes) its owner.
    func keep(_ slug: String) async {
        if node.directory.runningTree(slug) != nil, node.cluster.servingLease(slug) != nil { return }
        do {
            guard case .local(let lease) = try await node.admission.place(slug, hops: 0, logger: node.logger) else { return }
            _ = try await node.admission.tree(slug, lease: lease, logger: node.logger)
        } catch {
            node.logger.debug("tenant with job work not started here", metadata: ["tenant": .string(slug), "why": .string("\(error)")])
        }
    }

    private func prune() async {
        let now = Date()
        do {
            let pruned = try await node.store.pruneJobs(
                succeededBefore: now.addingTimeInterval(-7 * 86_400), failedBefore: now.addingTimeInterval(-30 * 86_400))
            if pruned > 0 { node.logger.info("pruned settled jobs", metadata: ["jobs": .stringConvertible(pruned)]) }
        } catch {
            node.logger.warning("cannot prune settled jobs", metadata: ["error": .string("\(error)")])
        }
    }
}
