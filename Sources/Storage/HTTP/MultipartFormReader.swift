import Foundation
import MultipartKit
import NIOCore

/// Reads a `multipart/form-data` upload as it streams in: small fields are kept, the file part's
/// bytes are handed on piece by piece and never held whole. Supabase's clients send the object as
/// the part named `file` (any other part with a filename counts too) with fields `cacheControl`
/// and `metadata` before or after it.
public final class MultipartFormReader {
    public enum Event {
        /// The file part's headers are complete: its content type.
        case fileStarted(contentType: String?)
        case fileBytes(ByteBuffer)
        case fileEnded
    }

    /// Bytes of headers, preamble or field values allowed between two pieces of file content.
    static let maxOverhead = 64 << 10
    /// Fields a form may have in all (Supabase's clients send two), and their bytes in all.
    static let maxFields = 32
    static let maxFieldBytes = 256 << 10
    private var fieldBytes = 0

    private let parser: MultipartParser
    private var headers: [(String, String)] = []
    private var partIsFile = false
    private var partStarted = false
    private var fieldValue: [UInt8] = []
    private var events: [Event] = []
    private var overhead = 0
    private var failure: StorageError?
    public private(set) var fields: [String: String] = [:]
    public private(set) var sawFile = false
    public private(set) var finished = false

    /// The boundary from a `Content-Type: multipart/form-data; boundary=…` header.
    public static func boundary(contentType: String) throws(StorageError) -> String {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            guard (1...200).contains(value.utf8.count) else { break }
            return value
        }
        throw .invalidRequest("the multipart body's Content-Type names no boundary")
    }

    public init(boundary: String) {
        parser = MultipartParser(boundary: boundary)
        parser.onHeader = { [unowned self] name, value in
            if !partStarted { partStarted = true }
            headers.append((name.lowercased(), value))
        }
        parser.onBody = { [unowned self] buffer in
            if isFileHeaders() && !partIsFile {
                partIsFile = true
                sawFile = true
                events.append(.fileStarted(contentType: header("content-type")))
            }
            if partIsFile {
                overhead = 0
                events.append(.fileBytes(buffer))
            } else {
                // A field: kept in memory, bounded.
                fieldValue += buffer.readableBytesView
                if fieldValue.count > Self.maxOverhead { failure = .invalidRequest("a form field is longer than \(Self.maxOverhead) bytes") }
            }
        }
        parser.onPartComplete = { [unowned self] in
            if partIsFile {
                events.append(.fileEnded)
            } else if isFileHeaders() {
                // An empty file: its headers, no bytes.
                sawFile = true
                events.append(.fileStarted(contentType: header("content-type")))
                events.append(.fileEnded)
            } else if let name = fieldName() {
                fieldBytes += fieldValue.count + name.utf8.count
                if fields.count >= Self.maxFields || fieldBytes > Self.maxFieldBytes {
                    failure = .invalidRequest("the form has more than \(Self.maxFields) fields or \(Self.maxFieldBytes) bytes of them")
                }
                fields[name] = String(decoding: fieldValue, as: UTF8.self)
            }
            headers = []
            fieldValue = []
            partIsFile = false
            partStarted = false
            overhead = 0
        }
    }

    /// Feeds the next piece of the body; answers what it completed, in order.
    public func feed(_ buffer: ByteBuffer) throws(StorageError) -> [Event] {
        overhead += buffer.readableBytes
        do {
            try parser.execute(buffer)
        } catch {
            throw .invalidRequest("the multipart body is malformed")
        }
        if let failure { throw failure }
        // Headers or a preamble that never end would otherwise grow without bound.
        if overhead > Self.maxOverhead + buffer.readableBytes, !partIsFile {
            throw .invalidRequest("the multipart body has more than \(Self.maxOverhead) bytes outside any file content")
        }
        defer { events = [] }
        return events
    }

    private func header(_ name: String) -> String? {
        headers.last { $0.0 == name }?.1
    }

    private func dispositionParameter(_ key: String) -> String? {
        guard let disposition = header("content-disposition") else { return nil }
        for parameter in disposition.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    private func fieldName() -> String? { dispositionParameter("name") }

    private func isFileHeaders() -> Bool {
        !headers.isEmpty && (fieldName() == "file" || dispositionParameter("filename") != nil)
    }
}
