import Crypto
import Foundation
import Logging
import Runtime
import TestSupport
import XCTest
@testable import Tenancy
@testable import TenantRuntime

/// A real store whose reads of tenant records can be made to fail, to take the control plane away
/// from a running tree.
final class SwitchableStore: ControlPlaneStore, @unchecked Sendable {
    let inner: any ControlPlaneStore
    private let lock = Lock()
    private var down = false
    struct Down: Error {}

    init(_ inner: any ControlPlaneStore) { self.inner = inner }
    func setDown(_ value: Bool) { lock.withLock { down = value } }
    private func check() throws { if lock.withLock({ down }) { throw Down() } }

    func migrate() async throws { try await inner.migrate() }
    func createTenant(_ t: Tenant, secret: SealedJWTSecret, audit: AuditEntry) async throws { try await inner.createTenant(t, secret: secret, audit: audit) }
    func tenant(_ slug: String) async throws -> Tenant? { try check(); return try await inner.tenant(slug) }
    func listTenants() async throws -> [Tenant] { try await inner.listTenants() }
    func updateTenant(_ t: Tenant, audit: AuditEntry) async throws -> Bool { try await inner.updateTenant(t, audit: audit) }
    func deleteTenant(_ slug: String, audit: AuditEntry) async throws -> Bool { try await inner.deleteTenant(slug, audit: audit) }
    func jwtSecrets(_ slug: String) async throws -> [SealedJWTSecret] { try await inner.jwtSecrets(slug) }
    func addJWTSecret(_ slug: String, secret: SealedJWTSecret, audit: AuditEntry) async throws -> Bool {
        try await inner.addJWTSecret(slug, secret: secret, audit: audit)
    }
    func revokeJWTSecret(_ slug: String, kid: String, at: Date, audit: AuditEntry) async throws -> Bool {
        try await inner.revokeJWTSecret(slug, kid: kid, at: at, audit: audit)
    }
    func createSource(_ s: SourceRecord, audit: AuditEntry) async throws { try await inner.createSource(s, audit: audit) }
    func sources(_ slug: String) async throws -> [SourceRecord] { try await inner.sources(slug) }
    func deleteSource(tenant: String, name: String, audit: AuditEntry) async throws -> Bool { try await inner.deleteSource(tenant: tenant, name: name, audit: audit) }
    func updateSourceModel(tenant: String, name: String, model: String, audit: AuditEntry) async throws -> Bool {
        try await inner.updateSourceModel(tenant: tenant, name: name, model: model, audit: audit)
    }
    func policies(_ slug: String) async throws -> String? { try await inner.policies(slug) }
    func setPolicies(_ slug: String, document: String, audit: AuditEntry) async throws -> Bool {
        try await inner.setPolicies(slug, document: document, audit: audit)
    }
    func appendAudit(_ entry: AuditEntry) async throws { try await inner.appendAudit(entry) }
    func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry] { try await inner.auditLog(tenant: tenant, limit: limit) }
    func setting(_ key: String) async throws -> String? { try await inner.setting(key) }
    func setSetting(_ key: String, to value: String) async throws { try await inner.setSetting(key, to: value) }
    func ping() async throws { try check(); try await inner.ping() }
    func close() async { await inner.close() }
}

final class TenantDirectoryTests: XCTestCase {
    var store: SwitchableStore!
    let box = SecretBox(masterKey: SymmetricKey(size: .bits256))

    override func setUp() async throws {
        let sqlite = try await SQLiteControlPlaneStore.inMemory()
        try await sqlite.migrate()
        store = SwitchableStore(sqlite)
    }

    func register(_ slug: String, limits: TenantLimits = .default) async throws {
        let secret = TenantKeyRing.newSecret()
        let sealed = try box.seal(secret, context: TenantKeyRing.secretContext(slug: slug, kid: "k1"))
        try await store.createTenant(
            Tenant(slug: slug, name: slug, createdAt: Date(), limits: limits),
            secret: SealedJWTSecret(kid: "k1", sealed: sealed, createdAt: Date()),
            audit: AuditEntry(at: Date(), actor: "test", action: "tenant.create", tenant: slug, requestID: nil))
    }

    func directory(_ configure: (inout TenantDirectory.Configuration) -> Void = { _ in }) -> TenantDirectory {
        var configuration = TenantDirectory.Configuration()
        configuration.backoff = Backoff(base: .milliseconds(5), cap: .milliseconds(20))
        configure(&configuration)
        return TenantDirectory(store: store, secretBox: box, realtimeWire: RecordingWire(), configuration: configuration, logger: Logger(label: "test"))
    }

    func testStartsATreeOnFirstUseAndReusesIt() async throws {
        try await register("acme")
        let directory = directory()
        let unknown = try await directory.tree(for: "ghost")
        XCTAssertNil(unknown)
        let trees = try await withThrowingTaskGroup(of: TenantTree?.self) { group in
            for _ in 0..<10 { group.addTask { try await directory.tree(for: "acme") } }
            return try await group.reduce(into: [TenantTree]()) { if let tree = $1 { $0.append(tree) } }
        }
        XCTAssertEqual(trees.count, 10)
        XCTAssertTrue(trees.allSatisfy { $0 === trees[0] }, "concurrent first requests share one tree")
        let count = await directory.activeCount
        XCTAssertEqual(count, 1)
        let snapshot = await trees[0].snapshot()
        XCTAssertEqual(snapshot.children.map(\.name), ["config-watcher"])
        XCTAssertEqual(snapshot.status, "running")
        await directory.stopAll()
    }

    func testKeyRingOpensTheSealedSecret() async throws {
        try await register("acme")
        let directory = directory()
        let tree = try await directory.tree(for: "acme")
        let ring = try XCTUnwrap(tree?.keyRing)
        XCTAssertNoThrow(try ring.verify(ring.apiKey(role: "anon", issuedAt: Date())))
        await directory.stopAll()
    }

    func testIdleTreesArePassivatedButBusyOnesAreNot() async throws {
        try await register("idle")
        try await register("busy")
        let directory = directory { $0.idleTimeout = .milliseconds(40) }
        _ = try await directory.tree(for: "idle")
        let busy = try await XCTUnwrapAsync(try await directory.tree(for: "busy"))
        let holding = Task { try await busy.gate.run { try await Task.sleep(for: .milliseconds(300)); return 0 } }
        try await Task.sleep(for: .milliseconds(80))
        await directory.passivateIdle()
        let remaining = await directory.active().map(\.slug)
        XCTAssertEqual(remaining, ["busy"], "a tree with a request in flight stays")
        _ = try await holding.value
        let health = busy.health
        XCTAssertEqual(health, .running)
        try await Task.sleep(for: .milliseconds(50))
        await directory.passivateIdle()
        let after = await directory.activeCount
        XCTAssertEqual(after, 0)
        XCTAssertEqual(busy.health, .stopped)
        let restarted = try await directory.tree(for: "busy")
        XCTAssertNotNil(restarted)
        XCTAssertFalse(restarted === busy, "the next request starts a fresh tree")
        await directory.stopAll()
    }

    func testWatcherAppliesLimitChangesMadeElsewhere() async throws {
        try await register("acme")
        let directory = directory { $0.refreshInterval = .milliseconds(20) }
        let tree = try await XCTUnwrapAsync(try await directory.tree(for: "acme"))
        var tenant = try await XCTUnwrapAsync(try await store.tenant("acme"))
        tenant.limits.maxConcurrent = 3
        _ = try await store.updateTenant(tenant, audit: AuditEntry(at: Date(), actor: "other-node", action: "tenant.update", tenant: "acme", requestID: nil))
        let applied = await waitUntil { tree.gate.limits.maxConcurrent == 3 }
        XCTAssertTrue(applied)
        await directory.stopAll()
    }

    func testWatcherStopsATreeWhoseTenantWasDeletedElsewhere() async throws {
        try await register("acme")
        let directory = directory { $0.refreshInterval = .milliseconds(20) }
        _ = try await directory.tree(for: "acme")
        _ = try await store.deleteTenant("acme", audit: AuditEntry(at: Date(), actor: "other-node", action: "tenant.delete", tenant: "acme", requestID: nil))
        let gone = await waitUntil { await directory.activeCount == 0 }
        XCTAssertTrue(gone)
    }

    func testLosingTheControlPlaneRestartsTheWatcherThenDegradesTheTenant() async throws {
        try await register("acme")
        let directory = directory {
            $0.refreshInterval = .milliseconds(5)
            $0.intensity = RestartIntensity(maxRestarts: 3, window: .seconds(30))
        }
        let tree = try await XCTUnwrapAsync(try await directory.tree(for: "acme"))
        store.setDown(true)
        let degraded = await waitUntil { tree.health == .degraded }
        XCTAssertTrue(degraded)
        let snapshot = await tree.snapshot()
        XCTAssertEqual(snapshot.status, "degraded")
        XCTAssertTrue(snapshot.degradedReason?.contains("config-watcher") ?? false, snapshot.degradedReason ?? "")
        XCTAssertEqual(snapshot.children.first?.state, .failed)
        XCTAssertEqual(snapshot.children.first?.restarts, 4)
        XCTAssertNotNil(snapshot.children.first?.lastError)
        // An admin restart gives the tenant a fresh tree once the store is back.
        store.setDown(false)
        await directory.stop("acme")
        let fresh = try await XCTUnwrapAsync(try await directory.tree(for: "acme"))
        XCTAssertEqual(fresh.health, .running)
        await directory.stopAll()
    }

    func testAChildFailingInsideASubsystemRestartsThereAndStopsWithTheTree() async throws {
        try await register("acme")
        let directory = directory()
        let starts = Counter()
        let tree = try await XCTUnwrapAsync(try await directory.tree(for: "acme"))
        await tree.data.supervisor.start(ChildSpec(name: "pool") {
            let n = starts.increment()
            if n < 3 { throw CocoaError(.fileNoSuchFile) }
            try await Task.sleep(for: .seconds(60))
        })
        let up = await waitUntil { starts.value == 3 }
        XCTAssertTrue(up)
        let data = await tree.snapshot().subsystems.first { $0.name == "data" }
        let pool = data?.children.first { $0.name == "pool" }
        XCTAssertEqual(pool?.restarts, 2)
        XCTAssertEqual(pool?.state, .running)
        XCTAssertEqual(tree.health, .running, "restarts within the budget do not degrade anything")
        await directory.stop("acme")
        let stopped = await tree.snapshot().subsystems.allSatisfy { $0.children.allSatisfy { $0.state == .stopped } }
        XCTAssertTrue(stopped)
        XCTAssertEqual(tree.health, .stopped)
    }

    func testAStoppedTreeIsFreedWithItsSubsystems() async throws {
        try await register("acme")
        let directory = directory()
        var tree = try await directory.tree(for: "acme")
        weak let weakTree = tree
        weak let weakHub = tree?.realtime.hub
        XCTAssertNotNil(weakHub)
        await directory.stop("acme")
        tree = nil
        let freed = await waitUntil { weakTree == nil && weakHub == nil }
        XCTAssertTrue(freed, "a passivated tenant's tree and realtime hub must not outlive it")
    }

    func testASubsystemThatExhaustsItsBudgetIsDegradedAloneAndTheOthersKeepRunning() async throws {
        try await register("acme")
        let directory = directory { $0.intensity = RestartIntensity(maxRestarts: 2, window: .seconds(30)) }
        let tree = try await XCTUnwrapAsync(try await directory.tree(for: "acme"))
        await tree.storage.supervisor.start(ChildSpec(name: "broken") { throw CocoaError(.fileReadNoPermission) })
        let healthyStarts = Counter()
        await tree.jobs.supervisor.start(ChildSpec(name: "worker") {
            healthyStarts.increment()
            try await Task.sleep(for: .seconds(60))
        })
        let degraded = await waitUntil { tree.health == .degraded }
        XCTAssertTrue(degraded)
        let snapshot = await tree.snapshot()
        let storage = snapshot.subsystems.first { $0.name == "storage" }
        let jobs = snapshot.subsystems.first { $0.name == "jobs" }
        XCTAssertEqual(storage?.status, "degraded")
        XCTAssertTrue(storage?.degradedReason?.contains("broken") ?? false)
        XCTAssertEqual(jobs?.status, "running")
        XCTAssertEqual(jobs?.children.first?.state, .running)
        XCTAssertEqual(healthyStarts.value, 1, "a sibling subsystem is not restarted by another's failure")
        XCTAssertTrue(snapshot.degradedReason?.hasPrefix("storage: ") ?? false, snapshot.degradedReason ?? "")
        XCTAssertEqual(
            Set(snapshot.subsystems.map(\.name)), ["data", "cache", "realtime", "jobs", "storage", "functions", "search"])
        await directory.stopAll()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0
    func increment() -> Int { lock.withLock { count += 1; return count } }
    var value: Int { lock.withLock { count } }
}

func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let resolved = try await value()
    return try XCTUnwrap(resolved, file: file, line: line)
}

/// End-user auth passes straight through: these tests only take tenant reads away.
extension SwitchableStore {
    func authSettings(_ slug: String) async throws -> (document: String, sealedSecrets: [UInt8])? { try await inner.authSettings(slug) }
    func setAuthSettings(_ slug: String, document: String, sealedSecrets: [UInt8], audit: AuditEntry) async throws -> Bool {
        try await inner.setAuthSettings(slug, document: document, sealedSecrets: sealedSecrets, audit: audit)
    }
    func createUser(_ user: AuthUser, token: AuthToken?) async throws { try await inner.createUser(user, token: token) }
    func user(tenant: String, id: String) async throws -> AuthUser? { try await inner.user(tenant: tenant, id: id) }
    func user(tenant: String, email: String) async throws -> AuthUser? { try await inner.user(tenant: tenant, email: email) }
    func updateUser(_ user: AuthUser) async throws -> Bool { try await inner.updateUser(user) }
    func deleteUser(tenant: String, id: String) async throws { try await inner.deleteUser(tenant: tenant, id: id) }
    func users(tenant: String, limit: Int, offset: Int) async throws -> (users: [AuthUser], total: Int) {
        try await inner.users(tenant: tenant, limit: limit, offset: offset)
    }
    func mergeUserProfile(tenant: String, id: String, fields: JSONObject) async throws {
        try await inner.mergeUserProfile(tenant: tenant, id: id, fields: fields)
    }
    func putToken(_ token: AuthToken) async throws { try await inner.putToken(token) }
    func takeToken(tenant: String, hash: String, kind: AuthToken.Kind, notBefore: Date) async throws -> AuthToken? {
        try await inner.takeToken(tenant: tenant, hash: hash, kind: kind, notBefore: notBefore)
    }
    func createSession(tenant: String, id: String, userID: String, refresh: AuthToken) async throws {
        try await inner.createSession(tenant: tenant, id: id, userID: userID, refresh: refresh)
    }
    func rotateRefreshToken(tenant: String, hash: String, nextHash: String, at: Date, graceSince: Date) async throws -> RefreshRotation {
        try await inner.rotateRefreshToken(tenant: tenant, hash: hash, nextHash: nextHash, at: at, graceSince: graceSince)
    }
    func sessionIsActive(tenant: String, id: String) async throws -> Bool { try await inner.sessionIsActive(tenant: tenant, id: id) }
    func revokeSessions(tenant: String, userID: String, scope: SessionScope, at: Date) async throws {
        try await inner.revokeSessions(tenant: tenant, userID: userID, scope: scope, at: at)
    }
    func identityUser(tenant: String, provider: String, subject: String) async throws -> String? {
        try await inner.identityUser(tenant: tenant, provider: provider, subject: subject)
    }
    func linkIdentity(tenant: String, provider: String, subject: String, userID: String, data: JSONObject, at: Date) async throws {
        try await inner.linkIdentity(tenant: tenant, provider: provider, subject: subject, userID: userID, data: data, at: at)
    }
    func identities(tenant: String, userID: String) async throws -> [AuthIdentity] { try await inner.identities(tenant: tenant, userID: userID) }
}

extension SwitchableStore {
    func buckets(tenant: String) async throws -> [StorageBucket] { try await inner.buckets(tenant: tenant) }
    func bucket(tenant: String, id: String) async throws -> StorageBucket? { try await inner.bucket(tenant: tenant, id: id) }
    func createBucket(_ bucket: StorageBucket) async throws { try await inner.createBucket(bucket) }
    func updateBucket(_ bucket: StorageBucket) async throws { try await inner.updateBucket(bucket) }
    func deleteBucket(tenant: String, id: String) async throws { try await inner.deleteBucket(tenant: tenant, id: id) }
    func object(tenant: String, bucket: String, name: String) async throws -> StoredObject? {
        try await inner.object(tenant: tenant, bucket: bucket, name: name)
    }
    func objects(tenant: String, bucket: String, prefix: String, after: String?, limit: Int) async throws -> [StoredObject] {
        try await inner.objects(tenant: tenant, bucket: bucket, prefix: prefix, after: after, limit: limit)
    }
    func putObject(_ object: StoredObject, replacing: String?) async throws { try await inner.putObject(object, replacing: replacing) }
    func moveObject(tenant: String, bucket: String, name: String, toBucket: String, toName: String, overwrite: Bool) async throws
        -> (moved: StoredObject, replaced: StoredObject?)
    {
        try await inner.moveObject(tenant: tenant, bucket: bucket, name: name, toBucket: toBucket, toName: toName, overwrite: overwrite)
    }
    func deleteObjects(tenant: String, bucket: String, names: [String]) async throws -> [StoredObject] {
        try await inner.deleteObjects(tenant: tenant, bucket: bucket, names: names)
    }
    func emptyBucket(tenant: String, bucket: String, limit: Int) async throws -> [StoredObject] {
        try await inner.emptyBucket(tenant: tenant, bucket: bucket, limit: limit)
    }
    func storageUsage(tenant: String) async throws -> StorageUsage { try await inner.storageUsage(tenant: tenant) }
    func allBlobKeys() async throws -> Set<String> { try await inner.allBlobKeys() }
}

extension SwitchableStore {
    func createS3Key(_ key: S3KeyRecord) async throws { try await inner.createS3Key(key) }
    func s3Keys(tenant: String) async throws -> [S3KeyRecord] { try await inner.s3Keys(tenant: tenant) }
    func s3Key(accessKeyID: String) async throws -> S3KeyRecord? { try await inner.s3Key(accessKeyID: accessKeyID) }
    func deleteS3Key(tenant: String, id: String) async throws -> Bool { try await inner.deleteS3Key(tenant: tenant, id: id) }
    func createMultipartUpload(_ upload: MultipartUploadRecord) async throws { try await inner.createMultipartUpload(upload) }
    func multipartUpload(tenant: String, id: String) async throws -> MultipartUploadRecord? { try await inner.multipartUpload(tenant: tenant, id: id) }
    func putPart(tenant: String, uploadID: String, part: MultipartPartRecord) async throws -> MultipartPartRecord? {
        try await inner.putPart(tenant: tenant, uploadID: uploadID, part: part)
    }
    func parts(tenant: String, uploadID: String) async throws -> [MultipartPartRecord] { try await inner.parts(tenant: tenant, uploadID: uploadID) }
    func deleteMultipartUpload(tenant: String, id: String) async throws -> [MultipartPartRecord] {
        try await inner.deleteMultipartUpload(tenant: tenant, id: id)
    }
    func multipartUploads(before: Date) async throws -> [MultipartUploadRecord] { try await inner.multipartUploads(before: before) }
}

extension SwitchableStore {
    func enqueue(_ job: JobRecord) async throws -> Bool { try await inner.enqueue(job) }
    func claim(tenant: String, fence: Int64, limit: Int, now: Date, visibleAgainAt: Date) async throws -> [JobRecord] {
        try await inner.claim(tenant: tenant, fence: fence, limit: limit, now: now, visibleAgainAt: visibleAgainAt)
    }
    func settle(tenant: String, id: String, fence: Int64, attempt: Int, outcome: JobOutcome, log: JobAttempt?) async throws -> Bool {
        try await inner.settle(tenant: tenant, id: id, fence: fence, attempt: attempt, outcome: outcome, log: log)
    }
    func releaseClaims(tenant: String, olderThan fence: Int64) async throws -> Int { try await inner.releaseClaims(tenant: tenant, olderThan: fence) }
    func job(tenant: String, id: String) async throws -> JobRecord? { try await inner.job(tenant: tenant, id: id) }
    func requeue(tenant: String, ids: [String]) async throws -> Int { try await inner.requeue(tenant: tenant, ids: ids) }
    func jobCounts(tenant: String) async throws -> [JobRecord.Status: Int] { try await inner.jobCounts(tenant: tenant) }
    func nextDue(tenant: String) async throws -> Date? { try await inner.nextDue(tenant: tenant) }
}

extension SwitchableStore {
    func enqueue(_ jobs: [JobRecord]) async throws -> Int { try await inner.enqueue(jobs) }
    func jobs(tenant: String, subject: String, status: JobRecord.Status?, before: Date?, limit: Int) async throws -> [JobRecord] {
        try await inner.jobs(tenant: tenant, subject: subject, status: status, before: before, limit: limit)
    }
    func jobIDs(tenant: String, subject: String, status: JobRecord.Status, since: Date?, limit: Int) async throws -> [String] {
        try await inner.jobIDs(tenant: tenant, subject: subject, status: status, since: since, limit: limit)
    }
    func recordAttempt(_ attempt: JobAttempt) async throws { try await inner.recordAttempt(attempt) }
    func attempts(tenant: String, job: String) async throws -> [JobAttempt] { try await inner.attempts(tenant: tenant, job: job) }
    func unsettledCount(tenant: String) async throws -> Int { try await inner.unsettledCount(tenant: tenant) }
    func pruneJobs(succeededBefore: Date, failedBefore: Date) async throws -> Int {
        try await inner.pruneJobs(succeededBefore: succeededBefore, failedBefore: failedBefore)
    }
    func createWebhook(_ webhook: WebhookRecord) async throws { try await inner.createWebhook(webhook) }
    func webhooks(tenant: String) async throws -> [WebhookRecord] { try await inner.webhooks(tenant: tenant) }
    func webhook(tenant: String, id: String) async throws -> WebhookRecord? { try await inner.webhook(tenant: tenant, id: id) }
    func updateWebhook(_ webhook: WebhookRecord) async throws -> Bool { try await inner.updateWebhook(webhook) }
    func deleteWebhook(tenant: String, id: String) async throws -> Bool { try await inner.deleteWebhook(tenant: tenant, id: id) }
    func tenantsWithJobWork() async throws -> [String] { try await inner.tenantsWithJobWork() }
}

extension SwitchableStore {
    func createQueue(tenant: String, name: String, at: Date) async throws { try await inner.createQueue(tenant: tenant, name: name, at: at) }
    func queueMetrics(tenant: String, now: Date) async throws -> [QueueMetrics] { try await inner.queueMetrics(tenant: tenant, now: now) }
    func dropQueue(tenant: String, name: String) async throws -> Bool { try await inner.dropQueue(tenant: tenant, name: name) }
    func purgeQueue(tenant: String, name: String) async throws -> Int { try await inner.purgeQueue(tenant: tenant, name: name) }
    func send(tenant: String, queue: String, messages: [String], delay: TimeInterval, maxLength: Int, now: Date) async throws -> [Int64] {
        try await inner.send(tenant: tenant, queue: queue, messages: messages, delay: delay, maxLength: maxLength, now: now)
    }
    func read(tenant: String, queue: String, visibility: TimeInterval, limit: Int, now: Date) async throws -> [QueueMessage] {
        try await inner.read(tenant: tenant, queue: queue, visibility: visibility, limit: limit, now: now)
    }
    func pop(tenant: String, queue: String, now: Date) async throws -> [QueueMessage] { try await inner.pop(tenant: tenant, queue: queue, now: now) }
    func archive(tenant: String, queue: String, id: Int64, at: Date) async throws -> Bool {
        try await inner.archive(tenant: tenant, queue: queue, id: id, at: at)
    }
    func deleteMessage(tenant: String, queue: String, id: Int64) async throws -> Bool {
        try await inner.deleteMessage(tenant: tenant, queue: queue, id: id)
    }
}

extension SwitchableStore {
    func createCron(_ cron: CronRecord) async throws { try await inner.createCron(cron) }
    func cronJobs(tenant: String) async throws -> [CronRecord] { try await inner.cronJobs(tenant: tenant) }
    func cronJob(tenant: String, name: String) async throws -> CronRecord? { try await inner.cronJob(tenant: tenant, name: name) }
    func updateCron(_ cron: CronRecord) async throws -> Bool { try await inner.updateCron(cron) }
    func deleteCron(tenant: String, name: String) async throws -> Bool { try await inner.deleteCron(tenant: tenant, name: name) }
    func advanceCron(tenant: String, name: String, expected: Date?, next: Date?) async throws -> Bool {
        try await inner.advanceCron(tenant: tenant, name: name, expected: expected, next: next)
    }
}

extension SwitchableStore {
    func job(tenant: String, key: String) async throws -> JobRecord? { try await inner.job(tenant: tenant, key: key) }
    func cancelPending(tenant: String, id: String, kind: String) async throws -> Bool { try await inner.cancelPending(tenant: tenant, id: id, kind: kind) }
    func reschedule(tenant: String, id: String, kind: String, at: Date) async throws -> Bool {
        try await inner.reschedule(tenant: tenant, id: id, kind: kind, at: at)
    }
    func createEmailTemplate(_ template: EmailTemplateRecord) async throws { try await inner.createEmailTemplate(template) }
    func emailTemplates(tenant: String) async throws -> [EmailTemplateRecord] { try await inner.emailTemplates(tenant: tenant) }
    func emailTemplate(tenant: String, idOrAlias: String) async throws -> EmailTemplateRecord? {
        try await inner.emailTemplate(tenant: tenant, idOrAlias: idOrAlias)
    }
    func updateEmailTemplate(_ template: EmailTemplateRecord) async throws -> Bool { try await inner.updateEmailTemplate(template) }
    func deleteEmailTemplate(tenant: String, id: String) async throws -> Bool { try await inner.deleteEmailTemplate(tenant: tenant, id: id) }
    func searchIndexes(tenant: String) async throws -> [SearchIndexRecord] { try await inner.searchIndexes(tenant: tenant) }
    func createSearchIndex(_ index: SearchIndexRecord) async throws { try await inner.createSearchIndex(index) }
    func updateSearchIndex(_ index: SearchIndexRecord) async throws -> Bool { try await inner.updateSearchIndex(index) }
    func deleteSearchIndex(tenant: String, uid: String) async throws -> Bool { try await inner.deleteSearchIndex(tenant: tenant, uid: uid) }
    func vectorIndexes(tenant: String) async throws -> [VectorIndexRecord] { try await inner.vectorIndexes(tenant: tenant) }
    func createVectorIndex(_ index: VectorIndexRecord) async throws { try await inner.createVectorIndex(index) }
    func deleteVectorIndex(tenant: String, name: String) async throws -> Bool { try await inner.deleteVectorIndex(tenant: tenant, name: name) }
    func vectors(tenant: String, index: String) async throws -> [StoredVector] { try await inner.vectors(tenant: tenant, index: index) }
    func upsertVectors(tenant: String, index: String, _ vectors: [StoredVector]) async throws {
        try await inner.upsertVectors(tenant: tenant, index: index, vectors)
    }
    func deleteVectors(tenant: String, index: String, namespace: String, ids: [String]?) async throws {
        try await inner.deleteVectors(tenant: tenant, index: index, namespace: namespace, ids: ids)
    }
}

extension SwitchableStore {
    func settle(_ settles: [JobSettle]) async throws -> [Bool] { try await inner.settle(settles) }
}

extension SwitchableStore {
    func deployFunction(
        tenant: String, name: String, module: [UInt8], settings: FunctionSettings, sha256: String, sealedSecrets: String?, maxFunctions: Int,
        keep: Int, now: Date
    ) async throws -> (function: FunctionRecord, version: FunctionVersionRecord, created: Bool) {
        try await inner.deployFunction(
            tenant: tenant, name: name, module: module, settings: settings, sha256: sha256, sealedSecrets: sealedSecrets, maxFunctions: maxFunctions,
            keep: keep, now: now)
    }
    func functions(tenant: String) async throws -> [FunctionRecord] { try await inner.functions(tenant: tenant) }
    func function(tenant: String, name: String) async throws -> FunctionRecord? { try await inner.function(tenant: tenant, name: name) }
    func functionVersions(tenant: String, name: String, withModules: Bool) async throws -> [FunctionVersionRecord] {
        try await inner.functionVersions(tenant: tenant, name: name, withModules: withModules)
    }
    func functionVersion(tenant: String, name: String, version: Int) async throws -> FunctionVersionRecord? {
        try await inner.functionVersion(tenant: tenant, name: name, version: version)
    }
    func activateFunctionVersion(tenant: String, name: String, version: Int, now: Date) async throws -> Bool {
        try await inner.activateFunctionVersion(tenant: tenant, name: name, version: version, now: now)
    }
    func deleteFunction(tenant: String, name: String) async throws -> Bool { try await inner.deleteFunction(tenant: tenant, name: name) }
}
