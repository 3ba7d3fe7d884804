/// How a vector index scores: Pinecone's three metrics. Internally every metric is a distance
/// (smaller is closer): cosine and dot product as the negated dot product (cosine over vectors
/// normalized when stored), euclidean as the squared distance; scores shown to clients are
/// Pinecone's (similarity for cosine and dot product, squared distance for euclidean).
public enum VectorMetric: String, Sendable, Codable {
    case cosine, euclidean, dotproduct

    @inline(__always)
    func distance(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        switch self {
        case .cosine, .dotproduct: return -Self.dot(a, b)
        case .euclidean: return Self.squaredDistance(a, b)
        }
    }

    /// The client's score for an internal distance.
    func score(_ distance: Float) -> Float {
        switch self {
        case .cosine, .dotproduct: return -distance
        case .euclidean: return distance
        }
    }

    @inline(__always)
    static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        // Four running sums: the loop vectorizes and the sums stay independent.
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        let n = a.count
        var i = 0
        while i + 4 <= n {
            s0 += a[i] * b[i]
            s1 += a[i + 1] * b[i + 1]
            s2 += a[i + 2] * b[i + 2]
            s3 += a[i + 3] * b[i + 3]
            i += 4
        }
        while i < n {
            s0 += a[i] * b[i]
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    @inline(__always)
    static func squaredDistance(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        let n = a.count
        var i = 0
        while i + 4 <= n {
            let d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3]
            s0 += d0 * d0
            s1 += d1 * d1
            s2 += d2 * d2
            s3 += d3 * d3
            i += 4
        }
        while i < n {
            let d = a[i] - b[i]
            s0 += d * d
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
    }
}
