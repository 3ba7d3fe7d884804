/// Whether this process exports traces. Checked before any span is made, so that with tracing off
/// (the default) the request and statement paths pay one load of a constant, not a span's
/// allocation and clock reads.
public enum TraceSwitch {
    /// Written once at start-up, before the server accepts a request; read-only afterwards.
    nonisolated(unsafe) public private(set) static var enabled = false

    public static func enable() { enabled = true }
}
