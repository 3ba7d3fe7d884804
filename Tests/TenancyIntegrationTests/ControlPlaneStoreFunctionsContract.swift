import Foundation
import Runtime
import TestSupport
import XCTest
@testable import Tenancy

/// Functions and their versions, run against both stores.
extension ControlPlaneStoreContract {
    func functionsKeepVersionsRollBackAndCount() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let module: [UInt8] = [0x00, 0x61, 0x73, 0x6D, 1, 0, 0, 0]
        var settings = FunctionSettings()
        let first = try await store.deployFunction(
            tenant: "acme", name: "hello", module: module, settings: settings, sha256: "a", sealedSecrets: "sealed-1", maxFunctions: 2, keep: 3, now: now)
        XCTAssertTrue(first.created)
        XCTAssertEqual(first.version.version, 1)
        XCTAssertEqual(first.function.activeVersion, 1)
        XCTAssertEqual(first.function.sealedSecrets, "sealed-1")
        for index in 2...5 {
            settings.timeoutMs = index * 100
            let next = try await store.deployFunction(
                tenant: "acme", name: "hello", module: module + [UInt8(index)], settings: settings, sha256: "v\(index)", sealedSecrets: nil,
                maxFunctions: 2, keep: 3, now: now.addingTimeInterval(Double(index)))
            XCTAssertFalse(next.created)
            XCTAssertEqual(next.function.activeVersion, index)
            XCTAssertEqual(next.function.sealedSecrets, "sealed-1", "secrets are kept unless given")
        }
        let versions = try await store.functionVersions(tenant: "acme", name: "hello", withModules: false)
        XCTAssertEqual(versions.map(\.version), [5, 4, 3], "the last three are kept")
        XCTAssertEqual(versions.first?.module, [])
        try await assertEqual(try await store.functionVersion(tenant: "acme", name: "hello", version: 4)?.module, module + [4])
        try await assertEqual(try await store.functionVersion(tenant: "acme", name: "hello", version: 4)?.settings.timeoutMs, 400)
        try await assertTrue(try await store.activateFunctionVersion(tenant: "acme", name: "hello", version: 3, now: now))
        try await assertFalse(try await store.activateFunctionVersion(tenant: "acme", name: "hello", version: 1, now: now), "version 1 is gone")
        try await assertEqual(try await store.function(tenant: "acme", name: "hello")?.activeVersion, 3)
        _ = try await store.deployFunction(
            tenant: "acme", name: "other", module: module, settings: settings, sha256: "o", sealedSecrets: nil, maxFunctions: 2, keep: 3, now: now)
        do {
            _ = try await store.deployFunction(
                tenant: "acme", name: "third", module: module, settings: settings, sha256: "t", sealedSecrets: nil, maxFunctions: 2, keep: 3, now: now)
            XCTFail("a third function is over the limit of two")
        } catch ControlPlaneError.limitReached {}
        try await assertEqual(try await store.functions(tenant: "acme").map(\.name), ["hello", "other"])
        try await assertTrue(try await store.deleteFunction(tenant: "acme", name: "hello"))
        try await assertFalse(try await store.deleteFunction(tenant: "acme", name: "hello"))
        try await assertEqual(try await store.functionVersions(tenant: "acme", name: "hello", withModules: true).count, 0)
    }
}
