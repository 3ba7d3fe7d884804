#if canImport(Glibc)
import Glibc

/// glibc's `malloc_trim` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32
#endif

/// Hands memory the allocator holds but no longer uses back to the system. glibc keeps freed
/// blocks in its arenas, so after a large release (an index build's scratch, a batch of passivated
/// tenants) the node's RSS would not fall without it. A no-op elsewhere.
public enum FreedMemory {
    public static func giveBack() {
        #if canImport(Glibc)
        _ = mallocTrim(0)
        #endif
    }
}
