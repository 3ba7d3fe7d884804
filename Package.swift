// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "mini-baas",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "minibaas", targets: ["Edge"]),
        .executable(name: "rest-baseline", targets: ["RestBaseline"]),
        .executable(name: "sqlite-baseline", targets: ["SQLiteBaseline"]),
        .executable(name: "realtime-fanout", targets: ["RealtimeFanout"]),
        .executable(name: "jobs-bench", targets: ["JobsBench"]),
        .executable(name: "mongo-baseline", targets: ["MongoBaseline"]),
        .executable(name: "functions-bench", targets: ["FunctionsBench"]),
        .executable(name: "graphql-bench", targets: ["GraphQLBench"]),
        .executable(name: "search-bench", targets: ["SearchBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        // Already in the graph through Hummingbird; named for its HTTP part types (Expect: 100-continue).
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // WebAssembly functions: a pure-Swift interpreter with fuel metering (and WAT for tests).
        .package(url: "https://github.com/swiftwasm/WasmKit.git", from: "0.4.2"),
        // Traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (its gRPC exporter is left out).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // libxcrypt's bcrypt, for end-user passwords.
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        // hiredis's RESP reader and command formatting, for the Redis client (I/O is swift-nio's).
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis"),
        // libpq's streaming replication, for the realtime change feed.
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ"),
        // libmongoc (with libbson), for MongoDB sources: pools, commands, BSON builders.
        .systemLibrary(name: "CMongoc", path: "Sources/CMongoc", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev"])]),
        // libvips' image resizing and encoding, for storage's image transforms.
        .systemLibrary(name: "CVips", path: "Sources/CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        // liburing, for storage's local disk I/O (a POSIX fallback where io_uring is refused).
        // A C target rather than a module map: liburing's headers clash with the kernel structures
        // other modules import, so they stay inside its one .c file.
        .target(name: "CLibURing", path: "Sources/CLibURing", linkerSettings: [.linkedLibrary("uring")]),
        // SQLite's variadic memory settings, for SQLiteHandle (the SQLite is sqlite-nio's copy).
        .target(name: "CSQLiteMemory", path: "Sources/CSQLiteMemory"),
        .target(
            name: "Runtime",
            dependencies: [
                "CHiredis", "CSQLiteMemory",
                // Its SQLite build (VaporCSQLite), driven directly by SQLiteHandle.
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Tenancy",
            dependencies: [
                "Runtime",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                "CCrypt",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Connectors",
            dependencies: [
                "Tenancy",
                "CLibPQ",
                "CMongoc",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Yams", package: "Yams"),
                // Spans around statements when the node exports traces (swift-otel is the Edge's).
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Object storage: names, blob stores (local disk, S3), quotas, signed URLs and the
        // transport-free operations the Supabase, S3 and TUS surfaces share.
        .target(
            name: "Storage",
            dependencies: [
                "Runtime", "Tenancy", "Connectors", "CVips", "CLibURing",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tenants' WebAssembly functions: module checks, a small WASI preview-1 host, the WAGI
        // (CGI) response, and the runner with its fuel, watchdog and memory cap.
        .target(
            name: "Functions",
            dependencies: [
                "Runtime",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // GraphQL generated from a source's model (pg_graphql's schema): our own parser and
        // validator, per-role schemas, introspection, and queries lowered to the REST planner.
        .target(
            name: "GraphQL",
            dependencies: ["Runtime", "Tenancy", "Connectors", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Search-as-you-type: Meilisearch's settings, filters and ranking over in-memory indexes
        // (each tenant's indexes and their sync with the sources live in TenantRuntime).
        .target(
            name: "Search",
            dependencies: ["Runtime", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Durable background work: outbound safety, Standard Webhooks signatures, retry schedules
        // (the job store itself is in the control plane, `Tenancy/Jobs`).
        .target(
            name: "Jobs",
            dependencies: [
                "Runtime", "Tenancy", "Connectors", "Storage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Each tenant's supervised tree and its typed subsystems (data, cache, realtime, and the
        // slots later features fill: jobs, storage, functions, search).
        .target(
            name: "TenantRuntime",
            dependencies: [
                "Runtime", "Tenancy", "Connectors", "Storage", "Jobs", "Functions", "GraphQL", "Search",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Edge",
            dependencies: [
                "Runtime", "Tenancy", "Connectors", "TenantRuntime", "Storage", "Jobs", "Functions", "GraphQL", "Search",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            // The web dashboard's files, compiled into the binary: the node serves them offline.
            resources: [
                .embedInCode("Dashboard/Assets/index.html"),
                .embedInCode("Dashboard/Assets/app.js"),
                .embedInCode("Dashboard/Assets/app.css"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: the hand-written service mini-baas is measured against (Benchmarks/rest).
        .executableTarget(
            name: "RestBaseline",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Benchmarks/rest/Baseline",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: CPU-bound modules in WasmKit, with and without fuel (Benchmarks/functions).
        .executableTarget(
            name: "FunctionsBench",
            dependencies: ["Functions", .product(name: "WasmKit", package: "WasmKit")],
            path: "Benchmarks/functions/Tools",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: builds a role schema for thousands of tables (Benchmarks/graphql).
        .executableTarget(
            name: "GraphQLBench",
            dependencies: ["GraphQL", "Connectors"],
            path: "Benchmarks/graphql/Tools",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: the in-process engine vs a brute-force scan, and pg_trgm in a raw
        // postgres-nio loop (Benchmarks/search).
        .executableTarget(
            name: "SearchBench",
            dependencies: [
                "Search", "Runtime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/search/Tools",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: the bare libmongoc loop MongoDB sources are measured against.
        .executableTarget(
            name: "MongoBaseline",
            dependencies: ["CMongoc"],
            path: "Benchmarks/mongo/Baseline",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: the hand-written SQLite service SQLite-hosted tables are measured against
        // (Benchmarks/sqlite).
        .executableTarget(
            name: "SQLiteBaseline",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            path: "Benchmarks/sqlite/Baseline",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: the WebSocket subscribers of Benchmarks/realtime's fan-out measurement.
        .executableTarget(
            name: "RealtimeFanout",
            dependencies: [
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Benchmarks/realtime/FanoutClient",
            swiftSettings: swiftSettings
        ),
        // Benchmark-only: the receiver and the bare AsyncHTTPClient loop of Benchmarks/jobs.
        .executableTarget(
            name: "JobsBench",
            dependencies: [
                "Jobs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Benchmarks/jobs/Tools",
            swiftSettings: swiftSettings
        ),
        // Fixtures the test targets share: the services scripts/test started, fresh databases.
        .target(
            name: "TestSupport",
            dependencies: ["Tenancy", .product(name: "PostgresNIO", package: "postgres-nio")],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        // Unit tests run without services (`swift test --filter RuntimeTests` takes seconds);
        // the *IntegrationTests targets need the PostgreSQL and Redis that scripts/test starts.
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime"], swiftSettings: swiftSettings),
        .testTarget(name: "RuntimeIntegrationTests", dependencies: ["Runtime", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TenancyTests", dependencies: ["Tenancy", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "TenancyIntegrationTests", dependencies: ["Tenancy", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ConnectorsTests",
            dependencies: ["Connectors", "TestSupport", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "SQLiteNIO", package: "sqlite-nio")],
            swiftSettings: swiftSettings),
        .testTarget(name: "ConnectorsIntegrationTests", dependencies: ["Connectors", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FunctionsTests", dependencies: ["Functions", .product(name: "WAT", package: "WasmKit")], swiftSettings: swiftSettings),
        .testTarget(name: "GraphQLTests", dependencies: ["GraphQL", "Connectors"], swiftSettings: swiftSettings),
        .testTarget(name: "SearchTests", dependencies: ["Search", "Runtime"], swiftSettings: swiftSettings),
        .testTarget(name: "TenantRuntimeTests", dependencies: ["TenantRuntime", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "EdgeTests",
            dependencies: [
                "Edge", "TenantRuntime", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EdgeIntegrationTests",
            dependencies: [
                "Edge", "TenantRuntime", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: swiftSettings
        ),
    ]
)
