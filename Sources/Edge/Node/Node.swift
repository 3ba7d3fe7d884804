import Connectors
import Crypto
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import PostgresNIO
import Runtime
import Storage
import ServiceLifecycle
import Tenancy
import TenantRuntime

/// Builds a node from its configuration and runs it until SIGTERM/SIGINT: control plane, secrets,
/// admin token, tenant directory, HTTP server — and on shutdown stops them in reverse order.
enum Node {
    struct StartupError: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ configuration: NodeConfiguration, announce: @escaping @Sendable (String) -> Void = { print($0) }) async throws {
        var logger = Logger(label: "minibaas")
        logger.logLevel = configuration.logLevel
        logger[metadataKey: "node"] = .string(configuration.nodeID)
        let metrics = NodeMetrics.shared

        let store: any ControlPlaneStore
        var postgres: PostgresControlPlaneStore?
        switch configuration.databaseURL {
        case nil:
            try prepareDataDir(configuration.dataDir)
            store = try await SQLiteControlPlaneStore.open(path: configuration.dataDir + "/control-plane.sqlite")
        case let url?:
            postgres = PostgresControlPlaneStore(url: url, logger: logger)
            store = postgres!
        }

        // The Postgres client runs for the node's whole life, around the service group, so that
        // start-up steps can use it and it closes only after the server has drained.
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let client = postgres?.client {
                group.addTask { await client.run() }
            }
            defer { group.cancelAll() }
            try await serve(configuration, store: store, logger: logger, metrics: metrics, announce: announce)
        }
        await store.close()
        logger.info("node stopped")
    }

    private static func serve(
        _ configuration: NodeConfiguration, store: any ControlPlaneStore, logger: Logger, metrics: NodeMetrics,
        announce: @escaping @Sendable (String) -> Void
    ) async throws {
        do {
            try await withTimeout(.seconds(15)) { try await store.migrate() }
        } catch {
            throw StartupError(description: "cannot prepare the control plane (\(configuration.databaseURL?.redacted ?? configuration.dataDir)): \(describe(error))")
        }
        let masterKey = try loadMasterKey(configuration)
        let secretBox = SecretBox(masterKey: masterKey)
        try await checkMasterKey(secretBox, store: store)
        let (adminToken, firstRun) = try await loadAdminToken(configuration, store: store, announce: announce)

        let lifecycle = NodeLifecycle()
        let cluster = try makeCoordinator(configuration, logger: logger)
        var directoryConfiguration = TenantDirectory.Configuration()
        directoryConfiguration.idleTimeout = configuration.tenantIdle
        directoryConfiguration.blobs = try await openBlobStore(configuration, store: store, logger: logger)
        if directoryConfiguration.blobs != nil {
            do {
                directoryConfiguration.images = try ImageTransformer(cacheDirectory: configuration.storageDirectory + "/.variants")
            } catch {
                logger.warning("image transforms are off: \(error)")
            }
        }
        let node = await NodeServices.assemble(
            configuration: configuration, store: store, secretBox: secretBox, masterKey: masterKey, adminToken: adminToken,
            cluster: cluster, lifecycle: lifecycle, directory: directoryConfiguration, logger: logger)
        let directory = node.directory

        if firstRun && configuration.mode == .embedded {
            try await createDemoTenant(node, announce: announce)
        }

        let tracing: (any Service)?
        do {
            tracing = try NodeTracing.start(environment: ProcessInfo.processInfo.environment, nodeID: configuration.nodeID, logger: logger)
        } catch {
            throw StartupError(description: "cannot start trace export: \(error)")
        }
        let reporter = configuration.sentryDSN.map {
            SentryReporter(dsn: $0, serverName: configuration.nodeID, environment: configuration.sentryEnvironment)
        }
        if let reporter { ProblemReports.install { reporter.report($0) } }
        defer { ProblemReports.install(nil) }
        let router = makeRouter(node, metrics: metrics, reporter: reporter)
        let realtime = RealtimeGateway(admission: node.admission, forwarder: node.forwarder)
        var app = Application(
            responder: EdgeResponder(inner: router.buildResponder(), baseDomain: configuration.baseDomain),
            server: HTTPServerBuilder { responder in
                LoopBoundChildChannel(HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    configuration: .init(
                        http1: .init(additionalChannelHandlers: [ExpectContinueHandler()]),
                        ws: .init(maxFrameSize: 16 << 20, autoPing: .enabled(timePeriod: .seconds(30))))
                ) { head, channel, logger in
                    await realtime.shouldUpgrade(head, channel: channel, logger: logger)
                })
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "mini-baas"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                lifecycle.boundPort = port
                announce("mini-baas node \(configuration.nodeID) (\(configuration.mode.rawValue) mode) listening on http://\(configuration.host):\(port)")
            },
            logger: logger)
        app.addServices(DirectoryService(
            directory: directory, lifecycle: lifecycle, cluster: cluster, keeper: JobTenantsKeeper(node: node), address: { node.advertisedAddress }))

        // A service group stops its services in reverse order: the node leaves the cluster (so
        // others stop sending it work) before the HTTP server drains.
        let group = ServiceGroup(configuration: .init(
            // The trace exporter first, so that it stops last and flushes the drained requests' spans.
            services: (tracing.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                .init(service: app, successTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: ClusterExitService(cluster: cluster, directory: directory)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger))
        // Error reports are delivered in the background for the node's whole life.
        let delivery = reporter.map { reporter in Task { await reporter.run() } }
        defer { delivery?.cancel() }
        try await group.run()
        if let reporter, let delivery {
            // Reports still queued (often the failure behind the shutdown) get up to 3 s to go out.
            reporter.stop()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await delivery.value }
                group.addTask { try? await Task.sleep(for: .seconds(3)) }
                await group.next()
                delivery.cancel()
                group.cancelAll()
            }
        }
    }

    static func makeRouter(_ node: NodeServices, metrics: NodeMetrics, reporter: SentryReporter? = nil) -> Router<EdgeContext> {
        let router = Router(context: EdgeContext.self)
        router.add(middleware: RequestMetricsMiddleware())
        // Off by default: without an OTLP endpoint no middleware is added at all.
        if TraceSwitch.enabled { router.add(middleware: RequestTracingMiddleware()) }
        if let reporter { router.add(middleware: ErrorReportingMiddleware(reporter: reporter, nodeID: node.configuration.nodeID)) }
        router.add(middleware: ErrorShapeMiddleware())
        let nodeAPI = NodeAdminAPI(node: node, metrics: metrics)
        nodeAPI.registerPublic(on: router)
        let admin = router.group("admin/v1").add(middleware: AdminAuthMiddleware(token: node.adminToken))
        TenantAdminAPI(node: node).register(on: admin)
        GraphQLAdminAPI(node: node).register(on: admin)
        SearchAdminAPI(node: node).register(on: admin)
        SourceAdminAPI(node: node, catalog: node.sourceCatalog).register(on: admin)
        PolicyAdminAPI(node: node).register(on: admin)
        KeyAdminAPI(node: node).register(on: admin)
        AuthAdminAPI(node: node).register(on: admin)
        StorageAdminAPI(node: node).register(on: admin)
        WebhookAdminAPI(node: node).register(on: admin)
        QueueAdminAPI(node: node).register(on: admin)
        CronAdminAPI(node: node).register(on: admin)
        FunctionAdminAPI(node: node).register(on: admin)
        StackAdminAPI(node: node).register(on: admin)
        nodeAPI.registerAdmin(on: admin)
        TenantAPI(node: node).register(on: router)
        DashboardRoutes().register(on: router)
        return router
    }

    // MARK: - Start-up steps

    /// Redis when `REDIS_URL` is set; otherwise the node coordinates with itself, in memory,
    /// through the same coordinator.
    private static func makeCoordinator(_ configuration: NodeConfiguration, logger: Logger) throws -> ClusterCoordinator {
        let backend: any CoordinationBackend
        if let text = configuration.redisURL {
            let url: RedisURL
            do { url = try RedisURL(text) } catch { throw StartupError(description: "REDIS_URL: \(error)") }
            // Reconnect attempts no further apart than a heartbeat: after a Redis restart every node
            // must be back well within the quiet period in which previous owners restore leases.
            let backoff = Backoff(base: .milliseconds(50), cap: configuration.heartbeatInterval, jitter: 0.2)
            backend = RedisCoordinationBackend(redis: RedisClient(url: url, backoff: backoff, logger: logger), prefix: configuration.redisPrefix)
        } else {
            backend = LocalCoordinationBackend()
        }
        var settings = ClusterCoordinator.Configuration()
        settings.heartbeatInterval = configuration.heartbeatInterval
        settings.leaseTTL = configuration.leaseTTL
        settings.outageGrace = configuration.outageGrace
        settings.placementWait = configuration.leaseTTL + configuration.heartbeatInterval * 3
        return ClusterCoordinator(nodeID: configuration.nodeID, backend: backend, configuration: settings, logger: logger)
    }

    private static func prepareDataDir(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StartupError(description: "cannot create data dir \(path): \(describe(error))")
        }
    }

    private static func loadMasterKey(_ configuration: NodeConfiguration) throws -> SymmetricKey {
        if let text = configuration.masterKey { return try MasterKey.parse(text) }
        do {
            return try MasterKey.loadOrCreate(at: configuration.dataDir + "/master.key").key
        } catch {
            throw StartupError(description: "\(error)")
        }
    }

    /// A sealed marker proves the master key is the one the control plane was created with, so a
    /// wrong key stops start-up instead of failing later on every tenant.
    private static func checkMasterKey(_ box: SecretBox, store: any ControlPlaneStore) async throws {
        let context = "node:master-key-check"
        if let marker = try await store.setting("master_key_check") {
            guard let bytes = Data(base64Encoded: marker), (try? box.open(Array(bytes), context: context)) != nil else {
                throw StartupError(description: "the master key does not match the one this control plane was created with")
            }
        } else {
            let sealed = try box.seal(Array("mini-baas".utf8), context: context)
            try await store.setSetting("master_key_check", to: Data(sealed).base64EncodedString())
        }
    }

    private static func loadAdminToken(
        _ configuration: NodeConfiguration, store: any ControlPlaneStore, announce: (String) -> Void
    ) async throws -> (AdminToken, firstRun: Bool) {
        let stored = try await store.setting("admin_token_sha256")
        if let token = configuration.adminToken { return (AdminToken(token: token), stored == nil && configuration.mode == .embedded) }
        if let stored {
            guard let token = AdminToken(hexDigest: stored) else { throw StartupError(description: "stored admin token digest is corrupt") }
            return (token, false)
        }
        let token = AdminToken.generate()
        let digest = AdminToken(token: token)
        try await store.setSetting("admin_token_sha256", to: digest.hexDigest)
        announce("mini-baas: generated the admin token; it is shown only this once and stored only as a hash:")
        announce("  MINIBAAS_ADMIN_TOKEN=\(token)")
        return (digest, true)
    }

    /// The node's blob store for object storage: an S3 bucket, or the storage directory, swept of
    /// what a crash left behind (temporary files, blobs no row points at). A cluster node uses a
    /// directory only when told every node sees it; otherwise its storage routes answer MB906.
    private static func openBlobStore(_ configuration: NodeConfiguration, store: any ControlPlaneStore, logger: Logger) async throws -> (any BlobStore)? {
        guard let blobs = try await makeBlobStore(configuration, logger: logger) else { return nil }
        // Unfinished uploads expire: S3 multipart uploads after a week, resumable ones after a day.
        for upload in try await store.multipartUploads(before: Date().addingTimeInterval(-7 * 24 * 3600)) {
            for part in try await store.deleteMultipartUpload(tenant: upload.tenant, id: upload.id) { await blobs.delete(part.blobKey) }
        }
        let expired = await blobs.resumableArea?.expireResumable(olderThan: TenantStorage.resumableExpiry) ?? 0
        let removed = try await blobs.sweep(keeping: try await store.allBlobKeys(), olderThan: .seconds(3600))
        if removed + expired > 0 {
            logger.notice("storage sweep removed blobs no object points at", metadata: ["blobs": .stringConvertible(removed + expired)])
        }
        return blobs
    }

    private static func makeBlobStore(_ configuration: NodeConfiguration, logger: Logger) async throws -> (any BlobStore)? {
        if let s3 = configuration.storageS3 {
            // Objects in an S3 bucket every node reaches; local files only for uploads in progress.
            return try await S3BlobStore(settings: s3, spoolDirectory: configuration.storageDirectory + "/spool")
        }
        if configuration.mode == .cluster && !configuration.storageShared {
            logger.warning(
                "object storage is off on this cluster node (MB906): set MINIBAAS_STORAGE_DIR to a directory every node shares and MINIBAAS_STORAGE_SHARED=1")
            return nil
        }
        let io: any BlobFileIO
        switch configuration.storageIO {
        case "posix":
            io = PosixFileIO()
        case "uring":
            let made = UringFileIO.make()
            guard let uring = made.io else {
                throw StartupError(description: "MB900: MINIBAAS_STORAGE_IO=uring, but io_uring is refused here (\(String(cString: strerror(made.error)))); use auto or posix")
            }
            io = uring
        default:
            // auto: POSIX calls on the blocking pool. Measured on 2 cores (Benchmarks/storage),
            // io_uring through this one-ring design was no faster on reads (GET 0.91x, 4 KiB GETs
            // 0.99x of POSIX; PUT 1.21x), so it is chosen only when asked for.
            io = PosixFileIO()
        }
        do {
            return try LocalBlobStore(root: configuration.storageDirectory, io: io)
        } catch {
            throw StartupError(description: "MB907: the storage directory \(configuration.storageDirectory) cannot be used: \(error)")
        }
    }

    private static func createDemoTenant(_ node: NodeServices, announce: (String) -> Void) async throws {
        guard try await node.store.tenant("demo") == nil else { return }
        let (tenant, keys) = try await node.registrar.create(slug: "demo", name: "Demo", actor: "node", requestID: nil)
        do {
            try await DemoData.seed(tenant, node: node)
        } catch {
            announce("mini-baas: the demo tenant has no todos table: \(describe(error))")
        }
        announce("mini-baas: created the demo tenant at \(node.apiURL(for: "demo"))")
        announce("  anon key:    \(keys.apiKey(role: "anon", issuedAt: tenant.createdAt))")
        // Shown once, like the admin token: the demo's writes need it.
        announce("  service key: \(keys.apiKey(role: "service_role", issuedAt: tenant.createdAt))")
        announce("  try:         curl -H 'apikey: <anon key>' \(node.apiURL(for: "demo"))/rest/v1/todos")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)".replacingOccurrences(of: "PSQLError.Code.", with: "")
        }
        return "\(error)"
    }
}

/// Runs the tenant directory's upkeep and the node's cluster membership while the node serves. On
/// shutdown — after the HTTP server has drained — stops every tenant tree and only then gives up
/// its leases.
struct DirectoryService: Service {
    let directory: TenantDirectory
    let lifecycle: NodeLifecycle
    let cluster: ClusterCoordinator
    /// Starts the trees of tenants with webhooks or pending jobs.
    let keeper: JobTenantsKeeper
    let address: @Sendable () -> String

    func run() async throws {
        await withGracefulShutdownHandler {
            await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await directory.runMaintenance() }
                    group.addTask { await keeper.run() }
                    group.addTask {
                        // Members are announced with the port the server actually bound.
                        while lifecycle.boundPort == nil {
                            do { try await Task.sleep(for: .milliseconds(10)) } catch { return }
                        }
                        await cluster.run(address: address())
                    }
                    await group.waitForAll()
                }
            }
        } onGracefulShutdown: {
            lifecycle.beginDraining()
        }
        // The node left the cluster already (ClusterExitService, first to stop).
        await directory.stopAll()
        await cluster.releaseAll()
    }
}

/// At the start of a graceful shutdown, before the server drains: leaves the cluster, and tells
/// realtime clients to reconnect (elsewhere) — the server would otherwise wait for their sockets.
struct ClusterExitService: Service {
    let cluster: ClusterCoordinator
    let directory: TenantDirectory

    func run() async throws {
        try? await gracefulShutdown()
        await cluster.leave()
        for tree in await directory.active() {
            await tree.realtime.hub.closeAll(reason: "the node is shutting down; reconnect")
        }
    }
}
