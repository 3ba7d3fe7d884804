import CHiredis

/// One RESP reply.
public enum RedisReply: Sendable, Equatable {
    case string(String)
    case status(String)
    case integer(Int64)
    case null
    case error(String)
    case array([RedisReply])

    public var string: String? {
        switch self {
        case .string(let text), .status(let text): text
        default: nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// Copies a hiredis reply tree into Swift values (the caller frees the tree).
    static func from(_ pointer: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = pointer.pointee
        func text() -> String {
            guard let str = reply.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: reply.len), as: UTF8.self)
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .string(text())
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_INTEGER: return .integer(reply.integer)
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = reply.element[index] { items.append(from(element)) } else { items.append(.null) }
            }
            return .array(items)
        default: return .null
        }
    }
}

public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an error reply.
    case server(String)
    /// No connection could be made, or it was lost with the command in flight.
    case unavailable(String)
    case protocolError(String)
    case timedOut

    public var description: String {
        switch self {
        case .server(let message): "Redis refused the command: \(message)"
        case .unavailable(let why): "Redis is unavailable: \(why)"
        case .protocolError(let why): "Redis sent something unreadable: \(why)"
        case .timedOut: "Redis did not answer in time"
        }
    }
}

/// RESP framing through hiredis: commands formatted by `redisFormatCommandArgv`, replies parsed
/// incrementally by a `redisReader` fed whatever bytes arrive.
final class RESPCodec {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    static func format(_ arguments: [String]) -> [UInt8] {
        let storage = arguments.map { Array($0.utf8) }
        var target: UnsafeMutablePointer<CChar>?
        let length: Int32 = storage.withUnsafeBufferPointers { pointers, lengths in
            redisFormatCommandArgv(&target, Int32(storage.count), pointers, lengths)
        }
        guard length > 0, let target else { return [] }
        defer { redisFreeCommand(target) }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }

    func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) else { return }
        guard redisReaderFeed(reader, base, bytes.count) == REDIS_OK else { throw .protocolError(readerError) }
    }

    /// The next complete reply, if the bytes so far hold one.
    func next() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw .protocolError(readerError) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisReply.from(raw.assumingMemoryBound(to: redisReply.self))
    }

    private var readerError: String {
        withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

extension Array where Element == [UInt8] {
    /// The C argv/argvlen pair hiredis wants, valid for the closure's duration.
    fileprivate func withUnsafeBufferPointers<R>(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        var buffers: [UnsafeMutablePointer<CChar>] = []
        for bytes in self {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Swift.max(1, bytes.count))
            bytes.withUnsafeBufferPointer { source in
                source.withMemoryRebound(to: CChar.self) { chars in
                    if let base = chars.baseAddress { buffer.update(from: base, count: bytes.count) }
                }
            }
            buffers.append(buffer)
            pointers.append(UnsafePointer(buffer))
            lengths.append(bytes.count)
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        return pointers.withUnsafeMutableBufferPointer { pointerBuffer in
            lengths.withUnsafeBufferPointer { lengthBuffer in body(pointerBuffer.baseAddress!, lengthBuffer.baseAddress!) }
        }
    }
}
