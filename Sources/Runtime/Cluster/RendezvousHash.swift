/// Highest-random-weight placement: every node scores every tenant, the best score owns it. When a
/// node joins or leaves, only the tenants it wins or held move; all others stay where they are.
public enum RendezvousHash {
    /// The member that owns `key`, or nil when there are none.
    public static func owner(of key: String, among members: some Sequence<String>) -> String? {
        var best: (id: String, score: UInt64)?
        for member in members {
            let score = self.score(key, member)
            if let current = best, current.score > score || (current.score == score && current.id < member) { continue }
            best = (member, score)
        }
        return best?.id
    }

    /// A stable 64-bit score: FNV-1a over `member \0 key`, then a SplitMix64 finaliser so that
    /// close inputs spread evenly. `Hasher` would not do: it is seeded per process.
    static func score(_ key: String, _ member: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in member.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        hash = (hash ^ 0) &* 0x100_0000_01b3
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        hash ^= hash >> 30
        hash = hash &* 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 27
        hash = hash &* 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return hash
    }
}
