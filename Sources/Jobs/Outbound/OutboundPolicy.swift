import Foundation

/// Where jobs may send requests. A tenant's webhook or cron target must not reach the node's own
/// network: loopback, private (RFC 1918, CGNAT), link-local (and the cloud metadata address in
/// it), unique-local IPv6, multicast and unspecified addresses are refused, unless the operator
/// allows a range (`MINIBAAS_OUTBOUND_ALLOW_CIDRS`, e.g. loopback for tests). Addresses are
/// checked when a target is registered and again, resolved, before every attempt (a name may be
/// rebound to an internal address after registration).
public struct OutboundPolicy: Sendable, Equatable {
    public let allowed: [CIDR]

    public init(allowed: [CIDR] = []) {
        self.allowed = allowed
    }

    /// From `MINIBAAS_OUTBOUND_ALLOW_CIDRS` (comma-separated); throws naming the bad entry.
    public init(allowList: String?) throws(OutboundError) {
        var ranges: [CIDR] = []
        for item in (allowList ?? "").split(separator: ",") {
            let text = item.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            guard let range = CIDR(text) else { throw .badAllowList(text) }
            ranges.append(range)
        }
        self.init(allowed: ranges)
    }

    static let refused: [CIDR] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "ff00::/8",
    ].compactMap(CIDR.init)

    /// Whether a request may go to `address` (a resolved IPv4 or IPv6 literal).
    public func permits(_ address: String) -> Bool {
        guard let ip = IPAddress(address) else { return false }
        if allowed.contains(where: { $0.contains(ip) }) { return true }
        // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
        if case .v6(let bytes) = ip, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return permits("\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])")
        }
        return !Self.refused.contains { $0.contains(ip) }
    }

    /// Checks a target URL as registered: http(s), a host, no credentials; a literal address must
    /// be permitted (names are checked when resolved, before each attempt).
    public func check(url text: String) throws(OutboundError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), let host = url.host,
            !host.isEmpty
        else { throw .badURL("expected an http(s) URL with a host; got '\(text)'") }
        guard url.user == nil, url.password == nil else { throw .badURL("credentials do not belong in the URL; send them as headers") }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if IPAddress(bare) != nil, !permits(bare) { throw .refused(bare) }
        if ["localhost", "localhost.localdomain"].contains(bare.lowercased()) || bare.lowercased().hasSuffix(".localhost"),
            !permits("127.0.0.1")
        {
            throw .refused(bare)
        }
        return url
    }
}

public enum OutboundError: Error, Equatable, Sendable, CustomStringConvertible {
    case badURL(String)
    case refused(String)
    case badAllowList(String)

    public var description: String {
        switch self {
        case .badURL(let why): "MB820: \(why)"
        case .refused(let host):
            "MB821: '\(host)' is a loopback, private, link-local or otherwise internal address; an operator can allow a range with MINIBAAS_OUTBOUND_ALLOW_CIDRS"
        case .badAllowList(let item): "MINIBAAS_OUTBOUND_ALLOW_CIDRS: '\(item)' is not a CIDR range"
        }
    }
}

/// An IPv4 or IPv6 address as bytes.
public enum IPAddress: Sendable, Equatable {
    case v4([UInt8])
    case v6([UInt8])

    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    var bytes: [UInt8] {
        switch self {
        case .v4(let bytes), .v6(let bytes): bytes
        }
    }
}

/// An address range, `10.0.0.0/8` or `fc00::/7`.
public struct CIDR: Sendable, Equatable, ExpressibleByStringLiteral {
    let network: IPAddress
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        let prefix = parts.count == 2 ? Int(parts[1]) : bits
        guard let prefix, (0...bits).contains(prefix) else { return nil }
        self.network = address
        self.prefix = prefix
    }

    public init(stringLiteral value: String) {
        self = CIDR(value)!
    }

    func contains(_ address: IPAddress) -> Bool {
        let a = network.bytes, b = address.bytes
        guard a.count == b.count else { return false }
        var remaining = prefix
        for index in a.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a[index] & mask != b[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
