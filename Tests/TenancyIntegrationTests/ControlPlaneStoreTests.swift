import Foundation
import Logging
import PostgresNIO
import TestSupport
import XCTest
@testable import Tenancy

final class SQLiteControlPlaneStoreTests: XCTestCase {
    var store: SQLiteControlPlaneStore!
    var contract: ControlPlaneStoreContract { ControlPlaneStoreContract(store: store) }

    override func setUp() async throws {
        let dir = try TestServices.temporaryDirectory()
        store = try await SQLiteControlPlaneStore.open(path: dir + "/cp.sqlite")
        try await store.migrate()
    }

    override func tearDown() async throws {
        await store?.close()
    }

    func testMigrationsAreIdempotent() async throws { try await contract.migrationsAreIdempotent() }
    func testTenantLifecycle() async throws { try await contract.tenantLifecycle() }
    func testDuplicateTenantChangesNothing() async throws { try await contract.duplicateTenantChangesNothing() }
    func testSecretsComeNewestFirst() async throws { try await contract.secretsComeNewestFirst() }
    func testSourcesBelongToTheirTenant() async throws { try await contract.sourcesBelongToTheirTenant() }
    func testSecretsRotateAndRevokeButNeverAll() async throws { try await contract.secretsRotateAndRevokeButNeverAll() }
    func testAuditLogIsNewestFirstAndFiltered() async throws { try await contract.auditLogIsNewestFirstAndFiltered() }
    func testSettingsOverwrite() async throws { try await contract.settingsOverwrite() }
    func testConcurrentCreatesOfOneSlugYieldOneTenant() async throws { try await contract.concurrentCreatesOfOneSlugYieldOneTenant() }
    func testUsersBelongToTheirTenant() async throws { try await contract.usersBelongToTheirTenant() }
    func testOneTimeTokensAreTakenOnce() async throws { try await contract.oneTimeTokensAreTakenOnce() }
    func testRefreshTokensRotateAndReuseRevokesTheSession() async throws { try await contract.refreshTokensRotateAndReuseRevokesTheSession() }
    func testSessionsRevokeByScope() async throws { try await contract.sessionsRevokeByScope() }
    func testIdentitiesLinkToUsers() async throws { try await contract.identitiesLinkToUsers() }
    func testAuthSettingsRoundTrip() async throws { try await contract.authSettingsRoundTrip() }
    func testStorageRowsBelongToTheirTenantAndBucket() async throws { try await contract.storageRowsBelongToTheirTenantAndBucket() }
    func testOverwritesReplaceOnlyTheVersionTheyRead() async throws { try await contract.overwritesReplaceOnlyTheVersionTheyRead() }
    func testJobsAreClaimedOnceAndSettledOnlyByTheirClaim() async throws { try await contract.jobsAreClaimedOnceAndSettledOnlyByTheirClaim() }
    func testWebhooksAndDeliveryLogs() async throws { try await contract.webhooksAndDeliveryLogs() }
    func testQueuesHavePgmqsSemantics() async throws { try await contract.queuesHavePgmqsSemantics() }
    func testANewOwnerTakesBackOlderClaimsAtOnce() async throws { try await contract.aNewOwnerTakesBackOlderClaimsAtOnce() }
    func testABatchOfSettlesIsDecidedJobByJob() async throws { try await contract.aBatchOfSettlesIsDecidedJobByJob() }
    func testFunctionsKeepVersionsRollBackAndCount() async throws { try await contract.functionsKeepVersionsRollBackAndCount() }

    func testAuditLogRefusesRewrites() async throws {
        try await store.appendAudit(AuditEntry(at: Date(), actor: "admin", action: "x", tenant: nil, requestID: nil))
        // Reach past the store's API: the database itself must refuse.
        let raw = try await SQLiteControlPlaneStoreTests.rawExecute(store, "UPDATE audit_log SET action = 'y'")
        XCTAssertNotNil(raw, "UPDATE on audit_log must fail")
        let deleted = try await SQLiteControlPlaneStoreTests.rawExecute(store, "DELETE FROM audit_log")
        XCTAssertNotNil(deleted, "DELETE on audit_log must fail")
        try await assertEqual(try await store.auditLog(tenant: nil, limit: 10).map(\.action), ["x"])
    }

    /// Returns the error a raw statement raised, or nil when it succeeded.
    static func rawExecute(_ store: SQLiteControlPlaneStore, _ sql: String) async throws -> (any Error)? {
        do {
            try await store.executeForTesting(sql)
            return nil
        } catch {
            return error
        }
    }
}

final class PostgresControlPlaneStoreTests: XCTestCase {
    var store: PostgresControlPlaneStore!
    var runner: Task<Void, Never>?
    var contract: ControlPlaneStoreContract { ControlPlaneStoreContract(store: store) }

    override func setUp() async throws {
        let url = try PostgresURL(try await TestServices.freshDatabase(prefix: "cp"))
        store = PostgresControlPlaneStore(url: url, logger: Logger(label: "test"))
        let client = store.client
        runner = Task { await client.run() }
        try await store.migrate()
    }

    override func tearDown() async throws {
        runner?.cancel()
    }

    func testMigrationsAreIdempotent() async throws { try await contract.migrationsAreIdempotent() }
    func testTenantLifecycle() async throws { try await contract.tenantLifecycle() }
    func testDuplicateTenantChangesNothing() async throws { try await contract.duplicateTenantChangesNothing() }
    func testSecretsComeNewestFirst() async throws { try await contract.secretsComeNewestFirst() }
    func testSourcesBelongToTheirTenant() async throws { try await contract.sourcesBelongToTheirTenant() }
    func testSecretsRotateAndRevokeButNeverAll() async throws { try await contract.secretsRotateAndRevokeButNeverAll() }
    func testAuditLogIsNewestFirstAndFiltered() async throws { try await contract.auditLogIsNewestFirstAndFiltered() }
    func testSettingsOverwrite() async throws { try await contract.settingsOverwrite() }
    func testConcurrentCreatesOfOneSlugYieldOneTenant() async throws { try await contract.concurrentCreatesOfOneSlugYieldOneTenant() }
    func testUsersBelongToTheirTenant() async throws { try await contract.usersBelongToTheirTenant() }
    func testOneTimeTokensAreTakenOnce() async throws { try await contract.oneTimeTokensAreTakenOnce() }
    func testRefreshTokensRotateAndReuseRevokesTheSession() async throws { try await contract.refreshTokensRotateAndReuseRevokesTheSession() }
    func testSessionsRevokeByScope() async throws { try await contract.sessionsRevokeByScope() }
    func testIdentitiesLinkToUsers() async throws { try await contract.identitiesLinkToUsers() }
    func testAuthSettingsRoundTrip() async throws { try await contract.authSettingsRoundTrip() }
    func testStorageRowsBelongToTheirTenantAndBucket() async throws { try await contract.storageRowsBelongToTheirTenantAndBucket() }
    func testOverwritesReplaceOnlyTheVersionTheyRead() async throws { try await contract.overwritesReplaceOnlyTheVersionTheyRead() }
    func testJobsAreClaimedOnceAndSettledOnlyByTheirClaim() async throws { try await contract.jobsAreClaimedOnceAndSettledOnlyByTheirClaim() }
    func testWebhooksAndDeliveryLogs() async throws { try await contract.webhooksAndDeliveryLogs() }
    func testQueuesHavePgmqsSemantics() async throws { try await contract.queuesHavePgmqsSemantics() }
    func testANewOwnerTakesBackOlderClaimsAtOnce() async throws { try await contract.aNewOwnerTakesBackOlderClaimsAtOnce() }
    func testABatchOfSettlesIsDecidedJobByJob() async throws { try await contract.aBatchOfSettlesIsDecidedJobByJob() }
    func testFunctionsKeepVersionsRollBackAndCount() async throws { try await contract.functionsKeepVersionsRollBackAndCount() }

    func testMigrationsFromSeveralNodesAtOnceApplyOnce() async throws {
        let store = self.store!
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try await store.migrate() } }
            try await group.waitForAll()
        }
        let rows = try await store.client.query("SELECT count(*)::int FROM minibaas.schema_migrations")
        var count = 0
        for try await value in rows.decode(Int.self) { count = value }
        XCTAssertEqual(count, Migrations.postgres.count, "each step applied once")
    }

    func testAuditLogRefusesRewrites() async throws {
        try await store.appendAudit(AuditEntry(at: Date(), actor: "admin", action: "x", tenant: nil, requestID: nil))
        do {
            try await store.client.query("UPDATE minibaas.audit_log SET action = 'y'")
            XCTFail("UPDATE on audit_log must fail")
        } catch let error as PSQLError {
            XCTAssertEqual(error.serverInfo?[.message], "audit_log is append-only")
        }
        try await assertEqual(try await store.auditLog(tenant: nil, limit: 10).map(\.action), ["x"])
    }
}
