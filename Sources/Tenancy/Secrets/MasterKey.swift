import Crypto
import Foundation

/// The key that seals every stored secret. In cluster mode it comes from `MINIBAAS_MASTER_KEY`
/// (base64 or hex of 32 bytes); embedded, it is generated once into a 0600 file in the data dir.
public enum MasterKey {
    public static func parse(_ text: String) throws -> SymmetricKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let bytes = Self.hex(trimmed) ?? Data(base64Encoded: trimmed).map(Array.init), bytes.count == 32 {
            return SymmetricKey(data: bytes)
        }
        throw MasterKeyError.invalid
    }

    /// Loads the key file, creating it with fresh random bytes and mode 0600 if it does not exist.
    public static func loadOrCreate(at path: String) throws -> (key: SymmetricKey, created: Bool) {
        let manager = FileManager.default
        if manager.fileExists(atPath: path) {
            let attributes = try manager.attributesOfItem(atPath: path)
            if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
                throw MasterKeyError.tooOpen(path)
            }
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return (try parse(text), false)
        }
        let key = SymmetricKey(size: .bits256)
        let encoded = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        // Create with 0600 from the start: no window in which the key is world-readable.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw MasterKeyError.cannotWrite(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(encoded.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw MasterKeyError.cannotWrite(path, String(cString: strerror(errno)))
        }
        return (key, true)
    }

    private static func hex(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < chars.count {
            guard let high = nibble(chars[index]), let low = nibble(chars[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}

public enum MasterKeyError: Error, CustomStringConvertible {
    case invalid
    case tooOpen(String)
    case cannotWrite(String, String)
    public var description: String {
        switch self {
        case .invalid: "MINIBAAS_MASTER_KEY must be 32 bytes, base64 or hex encoded"
        case .tooOpen(let path): "master key file \(path) is readable by others; chmod 600 it"
        case .cannotWrite(let path, let reason): "cannot create master key file \(path): \(reason)"
        }
    }
}
