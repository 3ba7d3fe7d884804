import Foundation
import Logging
import Runtime
import TestSupport
import XCTest
@testable import Tenancy

/// What every control-plane store must do. The SQLite and PostgreSQL test classes run each of these
/// against a real database of their kind.
struct ControlPlaneStoreContract {
    let store: any ControlPlaneStore

    func tenant(_ slug: String, name: String = "Acme") -> Tenant {
        Tenant(slug: slug, name: name, createdAt: Date(timeIntervalSince1970: 1_800_000_000), limits: .default)
    }

    func secret(_ kid: String = "k1", at seconds: Double = 1_800_000_000) -> SealedJWTSecret {
        SealedJWTSecret(kid: kid, sealed: Array("sealed-\(kid)".utf8), createdAt: Date(timeIntervalSince1970: seconds))
    }

    func audit(_ action: String, tenant: String?) -> AuditEntry {
        AuditEntry(at: Date(), actor: "admin", action: action, tenant: tenant, requestID: "req-1", detail: ["k": "v"])
    }

    func migrationsAreIdempotent() async throws {
        try await store.migrate()
        try await store.migrate()
        try await assertEqual(try await store.listTenants(), [])
    }

    func tenantLifecycle() async throws {
        var acme = tenant("acme")
        acme.limits.burst = 7
        try await store.createTenant(acme, secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createTenant(tenant("beta", name: "Beta"), secret: secret(), audit: audit("tenant.create", tenant: "beta"))

        try await assertEqual(try await store.tenant("acme"), acme)
        try await assertNil(try await store.tenant("nobody"))
        try await assertEqual(try await store.listTenants().map(\.slug), ["acme", "beta"])
        try await assertEqual(try await store.jwtSecrets("acme"), [secret()])

        acme.name = "Acme Corp"
        acme.status = .disabled
        acme.limits.maxConcurrent = 3
        try await assertTrue(try await store.updateTenant(acme, audit: audit("tenant.update", tenant: "acme")))
        try await assertEqual(try await store.tenant("acme"), acme)
        try await assertFalse(try await store.updateTenant(tenant("ghost"), audit: audit("tenant.update", tenant: "ghost")))

        try await assertTrue(try await store.deleteTenant("acme", audit: audit("tenant.delete", tenant: "acme")))
        try await assertFalse(try await store.deleteTenant("acme", audit: audit("tenant.delete", tenant: "acme")))
        try await assertNil(try await store.tenant("acme"))
        try await assertEqual(try await store.jwtSecrets("acme"), [])
        try await assertEqual(try await store.listTenants().map(\.slug), ["beta"])
        let actions = try await store.auditLog(tenant: "acme", limit: 10).map(\.action)
        XCTAssertEqual(actions, ["tenant.delete", "tenant.update", "tenant.create"], "the audit log outlives the tenant")
    }

    func duplicateTenantChangesNothing() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let before = try await store.auditLog(tenant: nil, limit: 100).count
        do {
            try await store.createTenant(tenant("acme", name: "Other"), secret: secret("k2"), audit: audit("tenant.create", tenant: "acme"))
            XCTFail("a duplicate slug must be refused")
        } catch let error as ControlPlaneError {
            XCTAssertEqual(error, .duplicate("tenant acme"))
        }
        try await assertEqual(try await store.tenant("acme")?.name, "Acme")
        try await assertEqual(try await store.jwtSecrets("acme").map(\.kid), ["k1"], "no secret of the refused tenant was written")
        try await assertEqual(try await store.auditLog(tenant: nil, limit: 100).count, before, "no audit line for a refused action")
    }

    func secretsComeNewestFirst() async throws {
        try await store.createTenant(tenant("acme"), secret: secret("old", at: 1_800_000_000), audit: audit("tenant.create", tenant: "acme"))
        try await assertEqual(try await store.jwtSecrets("acme").map(\.kid), ["old"])
    }

    func secretsRotateAndRevokeButNeverAll() async throws {
        try await store.createTenant(tenant("acme"), secret: secret("old", at: 1_800_000_000), audit: audit("tenant.create", tenant: "acme"))
        try await assertTrue(try await store.addJWTSecret("acme", secret: secret("new", at: 1_800_000_100), audit: audit("keys.rotate", tenant: "acme")))
        try await assertFalse(try await store.addJWTSecret("ghost", secret: secret("x"), audit: audit("keys.rotate", tenant: "ghost")))
        try await assertEqual(try await store.jwtSecrets("acme").map(\.kid), ["new", "old"])
        try await assertTrue(try await store.revokeJWTSecret("acme", kid: "old", at: Date(), audit: audit("keys.revoke", tenant: "acme")))
        try await assertFalse(try await store.revokeJWTSecret("acme", kid: "old", at: Date(), audit: audit("keys.revoke", tenant: "acme")))
        do {
            _ = try await store.revokeJWTSecret("acme", kid: "new", at: Date(), audit: audit("keys.revoke", tenant: "acme"))
            XCTFail("the last active secret must stay")
        } catch let error as ControlPlaneError {
            XCTAssertEqual(error, .lastActiveSecret)
        }
        let secrets = try await store.jwtSecrets("acme")
        XCTAssertNil(secrets.first { $0.kid == "new" }?.revokedAt)
        XCTAssertNotNil(secrets.first { $0.kid == "old" }?.revokedAt)
    }

    func sourcesBelongToTheirTenant() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let now = Date(timeIntervalSince1970: 1_800_000_100)
        let source = SourceRecord(
            tenant: "acme", name: "main", kind: "postgres", config: ["schemas": ["public"]],
            sealedSecrets: [1, 2, 3, 0, 255], createdAt: now, updatedAt: now)
        try await store.createSource(source, audit: audit("source.create", tenant: "acme"))
        try await assertEqual(try await store.sources("acme"), [source])
        do {
            try await store.createSource(source, audit: audit("source.create", tenant: "acme"))
            XCTFail("duplicate source")
        } catch let error as ControlPlaneError {
            XCTAssertEqual(error, .duplicate("source main"))
        }
        var orphan = source
        orphan.tenant = "nobody"
        do {
            try await store.createSource(orphan, audit: audit("source.create", tenant: "nobody"))
            XCTFail("a source needs its tenant")
        } catch let error as ControlPlaneError {
            XCTAssertEqual(error, .notFound("tenant nobody"))
        }
        try await assertTrue(try await store.deleteSource(tenant: "acme", name: "main", audit: audit("source.delete", tenant: "acme")))
        try await assertFalse(try await store.deleteSource(tenant: "acme", name: "main", audit: audit("source.delete", tenant: "acme")))
        try await store.createSource(source, audit: audit("source.create", tenant: "acme"))
        _ = try await store.deleteTenant("acme", audit: audit("tenant.delete", tenant: "acme"))
        try await assertEqual(try await store.sources("acme"), [], "deleting a tenant removes its sources")
    }

    func auditLogIsNewestFirstAndFiltered() async throws {
        try await store.appendAudit(audit("a", tenant: "x"))
        try await store.appendAudit(audit("b", tenant: "y"))
        try await store.appendAudit(audit("c", tenant: "x"))
        try await assertEqual(try await store.auditLog(tenant: nil, limit: 10).map(\.action), ["c", "b", "a"])
        try await assertEqual(try await store.auditLog(tenant: "x", limit: 10).map(\.action), ["c", "a"])
        try await assertEqual(try await store.auditLog(tenant: nil, limit: 1).map(\.action), ["c"])
        let entry = try await store.auditLog(tenant: "y", limit: 1)[0]
        XCTAssertEqual(entry.detail, ["k": "v"])
        XCTAssertEqual(entry.requestID, "req-1")
    }

    func settingsOverwrite() async throws {
        try await assertNil(try await store.setting("k"))
        try await store.setSetting("k", to: "1")
        try await store.setSetting("k", to: "2")
        try await assertEqual(try await store.setting("k"), "2")
    }

    func concurrentCreatesOfOneSlugYieldOneTenant() async throws {
        let store = self.store
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    do {
                        try await store.createTenant(
                            Tenant(slug: "race", name: "R\(index)", createdAt: Date()),
                            secret: SealedJWTSecret(kid: "k\(index)", sealed: [1], createdAt: Date()),
                            audit: AuditEntry(at: Date(), actor: "admin", action: "tenant.create", tenant: "race", requestID: nil))
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        XCTAssertEqual(results.filter { $0 }.count, 1)
        try await assertEqual(try await store.jwtSecrets("race").count, 1)
    }
}
