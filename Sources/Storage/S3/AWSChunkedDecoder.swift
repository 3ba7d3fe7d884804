import Crypto
import NIOCore

/// Reads an `aws-chunked` body as it streams: `hex-size[;chunk-signature=sig]\r\n data \r\n`
/// repeated, a zero-size chunk, then optional trailing headers (`x-amz-checksum-crc32:…`, and
/// with a signed trailer `x-amz-trailer-signature:…`). Chunk signatures, when the payload mode
/// signs them, are checked chunk by chunk, each chained from the one before.
public struct AWSChunkedDecoder {
    public struct Signing: Sendable {
        let key: [UInt8]
        let amzDate: String
        let scope: String
        var previous: String

        public init(verified: SigV4.Verified) {
            key = verified.signingKey
            amzDate = verified.amzDate
            scope = verified.scope
            previous = verified.seedSignature
        }
    }

    enum State {
        case header
        case data(remaining: Int, signature: String?)
        case dataEnd
        case trailers
        case done
    }

    /// Longest chunk header or trailer line accepted.
    static let maxLine = 4096
    private var state = State.header
    private var line: [UInt8] = []
    private var signing: Signing?
    private var chunkHash: SHA256?
    public private(set) var trailers: [String: String] = [:]
    public var isDone: Bool { if case .done = state { return true } else { return false } }

    public init(signing: Signing?) {
        self.signing = signing
    }

    /// The data bytes in `buffer`, in order; throws on malformed framing or a bad signature.
    public mutating func feed(_ buffer: ByteBuffer) throws(S3Error) -> [ByteBuffer] {
        var buffer = buffer
        var out: [ByteBuffer] = []
        while buffer.readableBytes > 0 {
            switch state {
            case .header, .trailers, .dataEnd:
                guard let byte = buffer.readInteger(as: UInt8.self) else { break }
                line.append(byte)
                guard line.count <= Self.maxLine else { throw .invalidRequest("an aws-chunked line is too long") }
                guard line.count >= 2, line[line.count - 2] == 13, byte == 10 else { continue }
                let text = String(decoding: line.dropLast(2), as: UTF8.self)
                line = []
                try takeLine(text)
            case .data(let remaining, let signature):
                let count = min(remaining, buffer.readableBytes)
                let piece = buffer.readSlice(length: count)!
                piece.withUnsafeReadableBytes { chunkHash?.update(bufferPointer: $0) }
                out.append(piece)
                if remaining - count == 0 {
                    if let signature { try checkChunk(signature) }
                    state = .dataEnd
                } else {
                    state = .data(remaining: remaining - count, signature: signature)
                }
            case .done:
                // Anything after the last chunk and its trailers is not part of the body.
                throw .invalidRequest("bytes after the end of an aws-chunked body")
            }
        }
        return out
    }

    private mutating func takeLine(_ text: String) throws(S3Error) {
        switch state {
        case .dataEnd:
            guard text.isEmpty else { throw .invalidRequest("an aws-chunked chunk is longer than its size") }
            state = .header
        case .header:
            let fields = text.split(separator: ";", maxSplits: 1)
            guard let sizeText = fields.first, let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw .invalidRequest("an aws-chunked chunk size is not hexadecimal")
            }
            var signature: String?
            if fields.count == 2 {
                let pair = fields[1].split(separator: "=", maxSplits: 1)
                guard pair.count == 2, pair[0] == "chunk-signature" else { throw .invalidRequest("an aws-chunked chunk header is malformed") }
                signature = String(pair[1])
            }
            if signing != nil && signature == nil { throw .signatureMismatch("an aws-chunked chunk has no signature") }
            chunkHash = signing == nil ? nil : SHA256()
            if size == 0 {
                if let signature { try checkChunk(signature) }
                state = .trailers
            } else {
                state = .data(remaining: size, signature: signature)
            }
        case .trailers:
            if text.isEmpty {
                state = .done
                return
            }
            let pair = text.split(separator: ":", maxSplits: 1)
            guard pair.count == 2 else { throw .invalidRequest("an aws-chunked trailer is malformed") }
            guard trailers.count < 16 else { throw .invalidRequest("an aws-chunked body has too many trailers") }
            trailers[pair[0].lowercased().trimmingCharacters(in: .whitespaces)] = pair[1].trimmingCharacters(in: .whitespaces)
        case .data, .done:
            break
        }
    }

    private mutating func checkChunk(_ given: String) throws(S3Error) {
        guard var signing else { return }
        let hash = SigV4.hex(chunkHash?.finalize() ?? SHA256().finalize())
        let expected = SigV4.chunkSignature(signingKey: signing.key, amzDate: signing.amzDate, scope: signing.scope, previous: signing.previous, chunkHash: hash)
        guard SigV4.constantTimeEqual(expected, given.lowercased()) else {
            throw .signatureMismatch("an aws-chunked chunk signature does not match")
        }
        signing.previous = expected
        self.signing = signing
    }
}
