import Foundation
import Runtime

/// What a function version runs with (contract "Admin"); each deploy is a new version.
public struct FunctionSettings: Sendable, Equatable, Codable {
    public var verifyJwt: Bool
    public var timeoutMs: Int
    public var memoryLimitMb: Int
    public var env: [String: String]
    public var serviceRole: Bool
    /// `javascript` for source run by QuickJS; nil (stored versions before it existed) or `wasm`
    /// for a WebAssembly module.
    public var language: String?

    public var isJavaScript: Bool { language == "javascript" }

    public init(verifyJwt: Bool = true, timeoutMs: Int = 2_000, memoryLimitMb: Int = 64, env: [String: String] = [:], serviceRole: Bool = false) {
        self.verifyJwt = verifyJwt
        self.timeoutMs = timeoutMs
        self.memoryLimitMb = memoryLimitMb
        self.env = env
        self.serviceRole = serviceRole
    }
}

/// One immutable version of a function: its module and settings.
public struct FunctionVersionRecord: Sendable, Equatable {
    public var tenant: String
    public var name: String
    public var version: Int
    public var module: [UInt8]
    public var settings: FunctionSettings
    public var sha256: String
    public var createdAt: Date

    public init(tenant: String, name: String, version: Int, module: [UInt8], settings: FunctionSettings, sha256: String, createdAt: Date) {
        self.tenant = tenant
        self.name = name
        self.version = version
        self.module = module
        self.settings = settings
        self.sha256 = sha256
        self.createdAt = createdAt
    }
}

/// A function: which version is active, and its secrets (per function, not per version; sealed
/// under the master key, never returned).
public struct FunctionRecord: Sendable, Equatable {
    public var tenant: String
    public var name: String
    public var activeVersion: Int
    public var sealedSecrets: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(tenant: String, name: String, activeVersion: Int, sealedSecrets: String, createdAt: Date, updatedAt: Date) {
        self.tenant = tenant
        self.name = name
        self.activeVersion = activeVersion
        self.sealedSecrets = sealedSecrets
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Functions in the control plane.
public protocol FunctionStore: Sendable {
    /// Stores the next version of `name` and makes it active, keeping the last `keep` versions;
    /// `sealedSecrets` replaces the function's secrets when given. A new function beyond
    /// `maxFunctions` throws `ControlPlaneError.limitReached`. Answers the function, its new
    /// version, and whether the function is new.
    func deployFunction(
        tenant: String, name: String, module: [UInt8], settings: FunctionSettings, sha256: String, sealedSecrets: String?, maxFunctions: Int,
        keep: Int, now: Date
    ) async throws -> (function: FunctionRecord, version: FunctionVersionRecord, created: Bool)
    func functions(tenant: String) async throws -> [FunctionRecord]
    func function(tenant: String, name: String) async throws -> FunctionRecord?
    /// Newest first; modules included only when `withModules`.
    func functionVersions(tenant: String, name: String, withModules: Bool) async throws -> [FunctionVersionRecord]
    func functionVersion(tenant: String, name: String, version: Int) async throws -> FunctionVersionRecord?
    /// Makes a kept version active again; false when there is no such version.
    func activateFunctionVersion(tenant: String, name: String, version: Int, now: Date) async throws -> Bool
    func deleteFunction(tenant: String, name: String) async throws -> Bool
}
