import Runtime

extension ConcurrencyLimiter {
    /// Takes one of a source's slots (a connection, a reader, a place in the write queue) within
    /// `limit`, or answers what PostgREST's clients expect of a busy server: 503 `MB600`.
    func admit(source: String, waitingFor what: String, within limit: Duration) async throws {
        do {
            try await acquire(within: limit)
        } catch is TimeoutError, is ConcurrencyLimiter.Refusal {
            throw RestError(status: 503, code: "MB600", message: "source '\(source)' has no free \(what)", hint: "retry shortly")
        }
    }
}
