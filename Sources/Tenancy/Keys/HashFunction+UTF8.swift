import Crypto
import Foundation
import Runtime

extension HashFunction {
    /// Feeds a string's UTF-8 bytes in place: `update(data: Array(text.utf8))` copies them first,
    /// which on the REST path (prepared-statement names, ETags) is an allocation per request.
    @inlinable
    public mutating func update(utf8 text: String) {
        var text = text
        text.withUTF8 { update(bufferPointer: UnsafeRawBufferPointer($0)) }
    }
}

extension Digest {
    /// The first `count` bytes as lower-case hexadecimal, read in place.
    @inlinable
    public func hex(prefix count: Int) -> String {
        withUnsafeBytes { Hex.encode(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
    }
}
