import Runtime

/// What a render asks for, as Supabase's transform options: `width`, `height` (1–2500),
/// `resize` (`cover` crops to fill, `contain` fits inside, `fill` stretches), `quality` (20–100)
/// and `format` (`origin` keeps the source's; unset: WebP when the client accepts it).
public struct ImageTransform: Sendable, Hashable {
    public enum Resize: String, Sendable { case cover, contain, fill }
    public enum Format: String, Sendable { case origin, webp, jpeg, png, avif }

    public var width: Int?
    public var height: Int?
    public var resize: Resize = .cover
    public var quality: Int = 80
    public var format: Format?

    public init(width: Int? = nil, height: Int? = nil, resize: Resize = .cover, quality: Int = 80, format: Format? = nil) {
        self.width = width
        self.height = height
        self.resize = resize
        self.quality = quality
        self.format = format
    }

    public static let names = ["width", "height", "resize", "quality", "format"]

    /// From query parameters (or a signed URL's claims); nil when none is given.
    public static func parse(_ value: (String) -> String?) throws(StorageError) -> ImageTransform? {
        guard names.contains(where: { value($0) != nil }) else { return nil }
        var transform = ImageTransform()
        func dimension(_ name: String) throws(StorageError) -> Int? {
            guard let text = value(name), !text.isEmpty else { return nil }
            guard let number = Int(text), (1...2500).contains(number) else { throw .invalidRequest("\(name) must be a whole number from 1 to 2500") }
            return number
        }
        transform.width = try dimension("width")
        transform.height = try dimension("height")
        if let text = value("resize"), !text.isEmpty {
            guard let resize = Resize(rawValue: text) else { throw .invalidRequest("resize must be cover, contain or fill") }
            transform.resize = resize
        }
        if let text = value("quality"), !text.isEmpty {
            guard let quality = Int(text), (20...100).contains(quality) else { throw .invalidRequest("quality must be a whole number from 20 to 100") }
            transform.quality = quality
        }
        if let text = value("format"), !text.isEmpty {
            guard let format = Format(rawValue: text) else { throw .invalidRequest("format must be origin, webp, jpeg, png or avif") }
            transform.format = format
        }
        return transform
    }

    public static func parse(claims: JSONObject) throws(StorageError) -> ImageTransform? {
        try parse { name in
            switch claims[name] {
            case .string(let text)?: text
            case let other?: other.intValue.map { String($0) }
            case nil: nil
            }
        }
    }

    public var claims: JSONObject {
        var claims = JSONObject()
        if let width { claims["width"] = .integer(Int64(width)) }
        if let height { claims["height"] = .integer(Int64(height)) }
        claims["resize"] = .string(resize.rawValue)
        claims["quality"] = .integer(Int64(quality))
        if let format { claims["format"] = .string(format.rawValue) }
        return claims
    }

    /// A stable name for the variant's cache file.
    var cacheName: String {
        "w\(width ?? 0)-h\(height ?? 0)-\(resize.rawValue)-q\(quality)"
    }
}
