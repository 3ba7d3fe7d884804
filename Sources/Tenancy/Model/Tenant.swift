import Foundation

public enum TenantStatus: String, Sendable, Codable {
    case active
    case disabled
}

/// A registered tenant as the control plane stores it. Secrets are not part of this value.
public struct Tenant: Sendable, Equatable, Codable {
    public var slug: String
    public var name: String
    public var status: TenantStatus
    public var createdAt: Date
    public var limits: TenantLimits

    public init(slug: String, name: String, status: TenantStatus = .active, createdAt: Date, limits: TenantLimits = .default) {
        self.slug = slug
        self.name = name
        self.status = status
        self.createdAt = createdAt
        self.limits = limits
    }
}

/// Slugs name tenants in URLs and host names, so they follow DNS label rules.
public enum Slug {
    public static let pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"

    public static func isValid(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (3...40).contains(bytes.count) else { return false }
        func lowerOrDigit(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
        guard (0x61...0x7A).contains(bytes[0]), lowerOrDigit(bytes[bytes.count - 1]) else { return false }
        return bytes.dropFirst().dropLast().allSatisfy { lowerOrDigit($0) || $0 == 0x2D }
    }
}
