import CVips
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Runtime

/// Renders image variants with libvips on a thread pool of its own (never an event loop, never
/// the pool file I/O uses), a few at a time with a bounded queue; each variant is kept on disk
/// under a name made from the source blob (a new version is a new blob) and the options, so a
/// repeated render is a file read.
public final class ImageTransformer: Sendable {
    /// Sources larger than this are refused before decoding.
    public static let maxSourceBytes = 25 << 20
    public static let maxSourcePixels = 50_000_000

    let pool: NIOThreadPool
    let gate: ConcurrencyLimiter
    let cacheDirectory: String
    private static let initialised: Bool = cvips_init() == 0

    public init(cacheDirectory: String, threads: Int = max(1, System.coreCount), queue: Int = 64) throws {
        guard Self.initialised else { throw StorageError.backendUnavailable("libvips could not start") }
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        self.cacheDirectory = cacheDirectory
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        gate = ConcurrencyLimiter(maxConcurrent: threads, maxQueued: queue)
    }

    public struct Rendered: Sendable {
        public let bytes: ByteBuffer
        public let contentType: String
    }

    /// The variant of the blob `key` for `transform`; `source` reads the original (at most
    /// `maxSourceBytes`, which the caller has checked against the object's size).
    public func render(key: String, transform: ImageTransform, acceptsWebP: Bool, source: () async throws -> [UInt8]) async throws -> Rendered {
        let wanted = transform.format ?? (acceptsWebP ? .webp : .origin)
        let digest = SHA256.hash(data: Array(key.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
        let base = "\(cacheDirectory)/\(digest.prefix(2))/\(digest)-\(transform.cacheName)-\(wanted.rawValue)"
        if let cached = try await cachedVariant(base) { return cached }
        // Admitted before the source is read: at most `threads` sources are in memory at once.
        do {
            try await gate.acquire()
        } catch {
            throw StorageError(status: 503, error: "Service Unavailable", code: "MB912", message: "too many image transforms are waiting; retry shortly")
        }
        defer { gate.release() }
        let bytes = try await source()
        let rendered = try await pool.runIfActive { try Self.transform(bytes, transform, wanted) }
        try? await store(rendered, base: base)
        return rendered
    }

    static func transform(_ bytes: [UInt8], _ transform: ImageTransform, _ wanted: ImageTransform.Format) throws -> Rendered {
        try bytes.withUnsafeBytes { raw -> Rendered in
            cvips_clear_error()
            guard let loader = cvips_loader(raw.baseAddress, raw.count).map({ String(cString: $0) }) else {
                throw StorageError(status: 415, error: "invalid_mime_type", code: "InvalidImage", message: "the object is not an image libvips can read")
            }
            var width: Int32 = 0, height: Int32 = 0
            guard cvips_header(raw.baseAddress, raw.count, &width, &height) == 0 else { throw failure("cannot read the image's header") }
            guard Int(width) * Int(height) <= maxSourcePixels else {
                throw StorageError(status: 413, error: "Payload too large", code: "ImageTooLarge",
                                   message: "the image has \(Int(width) * Int(height)) pixels; transforms take at most \(maxSourcePixels)")
            }
            // One side given: the other follows the aspect ratio.
            // Computed sides are held to the same 2500 as given ones (a 900000x1 source asked for a
            // height would otherwise ask for a width in the billions).
            func side(_ value: Double) -> Int { Int(min(2500, max(1, value.rounded()))) }
            let targetWidth = transform.width ?? side(transform.height.map { Double($0) * Double(width) / Double(max(1, height)) } ?? Double(width))
            let targetHeight = transform.height ?? side(transform.width.map { Double($0) * Double(height) / Double(max(1, width)) } ?? Double(height))
            var image: UnsafeMutablePointer<VipsImage>?
            let crop: Int32 = transform.resize == .cover && transform.width != nil && transform.height != nil ? 1 : 0
            let force: Int32 = transform.resize == .fill ? 1 : 0
            guard cvips_thumbnail(raw.baseAddress, raw.count, Int32(clamping: targetWidth), Int32(clamping: targetHeight), crop, force, &image) == 0,
                let image
            else { throw failure("cannot resize the image") }
            defer { cvips_unref(image) }
            let (suffix, contentType) = encoding(wanted, loader: loader, quality: transform.quality)
            var output: UnsafeMutableRawPointer?
            var length = 0
            guard cvips_save(image, suffix, &output, &length) == 0, let output else { throw failure("cannot encode the image as \(contentType)") }
            defer { cvips_free(output) }
            return Rendered(bytes: ByteBuffer(bytes: UnsafeRawBufferPointer(start: output, count: length)), contentType: contentType)
        }
    }

    static func encoding(_ wanted: ImageTransform.Format, loader: String, quality: Int) -> (String, String) {
        switch wanted {
        case .webp: return (".webp[Q=\(quality),strip]", "image/webp")
        case .jpeg: return (".jpg[Q=\(quality),strip]", "image/jpeg")
        case .png: return (".png[strip]", "image/png")
        case .avif: return (".avif[Q=\(quality),strip]", "image/avif")
        case .origin:
            if loader.hasPrefix("png") { return (".png[strip]", "image/png") }
            if loader.hasPrefix("webp") { return (".webp[Q=\(quality),strip]", "image/webp") }
            return (".jpg[Q=\(quality),strip]", "image/jpeg")
        }
    }

    static func failure(_ what: String) -> StorageError {
        let reason = String(cString: cvips_error()).trimmingCharacters(in: .whitespacesAndNewlines)
        cvips_clear_error()
        return StorageError(status: 422, error: "Unprocessable", code: "TransformFailed", message: "\(what)\(reason.isEmpty ? "" : ": " + reason)")
    }

    private func cachedVariant(_ base: String) async throws -> Rendered? {
        try await NIOThreadPool.singleton.runIfActive {
            for (suffix, type) in [("webp", "image/webp"), ("jpeg", "image/jpeg"), ("png", "image/png"), ("avif", "image/avif")] {
                if let data = FileManager.default.contents(atPath: "\(base).\(suffix)") {
                    return Rendered(bytes: ByteBuffer(bytes: data), contentType: type)
                }
            }
            return nil
        }
    }

    private func store(_ rendered: Rendered, base: String) async throws {
        let suffix = rendered.contentType.split(separator: "/").last.map(String.init) ?? "bin"
        let path = "\(base).\(suffix)"
        try await NIOThreadPool.singleton.runIfActive {
            let directory = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // Written aside and renamed: a reader never sees half a variant.
            let temporary = path + ".\(UUID().uuidString)"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(rendered.bytes.readableBytesView)) else { return }
            _ = Glibc.rename(temporary, path)
        }
    }
}
