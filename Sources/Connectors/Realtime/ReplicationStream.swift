import CLibPQ
import Foundation
import Logging
import Runtime
import Tenancy

#if canImport(Glibc)
import Glibc
#endif

/// One logical slot's changes, streamed by the server over libpq's replication protocol
/// (`START_REPLICATION … LOGICAL` with wal2json format-version 2), so a commit reaches the
/// subscribers as soon as the server has decoded it — nothing is polled.
///
/// libpq runs non-blocking on a thread of its own (its calls are synchronous C; it must not sit
/// on the cooperative pool), waiting on the socket with `poll(2)` at most 100 ms at a time so a
/// stop is noticed at once. Whole transactions cross to the consumer in commit order; the slot's
/// confirmed position is reported to the server only after the consumer has dispatched them, so a
/// node that dies mid-way gets them again (at least once). When the consumer falls behind, the
/// thread stops reading and TCP pushes back on the server; a huge transaction crosses in parts of
/// 1,000 changes — memory stays bounded.
final class ReplicationStream: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A transaction's changes, or a part of a large one.
    struct Transaction: Sendable {
        var events: [ChangeEvent]
        /// Where the commit record ends: what to confirm once the events are dispatched (nil for
        /// the parts before a large transaction's last).
        var end: UInt64?
    }

    private let parameters: [(String, String)]
    private let slot: String
    private let logger: Logger
    /// Transactions (or parts) handed over but not yet dispatched, beyond which the thread stops
    /// reading.
    private let window: Int

    // Shared between the reading thread and the consumer; guarded by `condition`.
    private let condition = NSCondition()
    private var confirmed: UInt64 = 0
    private var undelivered = 0
    private var stopped = false
    private var threadEnded = false
    private var endWaiter: CheckedContinuation<Void, Never>?

    init(parameters: [(String, String)], slot: String, window: Int = 64, logger: Logger) {
        self.parameters = parameters
        self.slot = slot
        self.window = window
        self.logger = logger
    }

    /// Streams until cancelled (returns) or until the connection fails (throws, with libpq's or
    /// the server's own words).
    func run(dispatch: @escaping @Sendable ([ChangeEvent]) async -> Void) async throws {
        let (transactions, continuation) = AsyncThrowingStream.makeStream(of: Transaction.self, throwing: (any Error).self)
        continuation.onTermination = { [self] _ in stop() }
        let thread = Thread { [self] in read(into: continuation) }
        thread.name = "mb-feed"
        thread.start()
        // Cancellation reaches the thread through the stream's termination, which comes only
        // when the loop asks for more — so a dispatch under way finishes and is confirmed first.
        do {
            for try await transaction in transactions {
                if !transaction.events.isEmpty { await dispatch(transaction.events) }
                delivered(upTo: transaction.end)
            }
        } catch {
            stop()
            await threadExit()
            throw error
        }
        // The thread's last act is telling the server what was dispatched; a node shutting down
        // waits for it, or everything since the last report would be delivered again.
        stop()
        await threadExit()
    }

    private func threadExit() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            condition.lock()
            if threadEnded {
                condition.unlock()
                waiter.resume()
            } else {
                endWaiter = waiter
                condition.unlock()
            }
        }
    }

    private func threadEnds() {
        condition.lock()
        threadEnded = true
        let waiter = endWaiter
        endWaiter = nil
        condition.unlock()
        waiter?.resume()
    }

    private func delivered(upTo end: UInt64?) {
        condition.lock()
        if let end { confirmed = max(confirmed, end) }
        undelivered -= 1
        condition.signal()
        condition.unlock()
    }

    private func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    // MARK: - The reading thread

    private func read(into continuation: AsyncThrowingStream<Transaction, any Error>.Continuation) {
        var connection: OpaquePointer?
        defer {
            if let connection { PQfinish(connection) }
            threadEnds()
        }
        do {
            let conn = try connect()
            connection = conn
            try startReplication(conn)
            guard PQsetnonblocking(conn, 1) == 0 else { throw Failure(description: Self.message(conn)) }
            try stream(conn, into: continuation)
            continuation.finish()
        } catch {
            continuation.finish(throwing: error)
        }
    }

    private var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    private func connect() throws -> OpaquePointer {
        let keywords = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection: OpaquePointer? = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keys in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { vals in
                PQconnectStartParams(keys.baseAddress, vals.baseAddress, 0)
            }
        }
        guard let connection else { throw Failure(description: "libpq could not allocate a connection") }
        guard PQstatus(connection) != CONNECTION_BAD else {
            defer { PQfinish(connection) }
            throw Failure(description: Self.message(connection))
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var state = PGRES_POLLING_WRITING
        while state != PGRES_POLLING_OK {
            if state == PGRES_POLLING_FAILED {
                defer { PQfinish(connection) }
                throw Failure(description: Self.message(connection))
            }
            do {
                guard try waitFor(PQsocket(connection), readable: state == PGRES_POLLING_READING, until: deadline) else {
                    throw CancellationError()
                }
            } catch {
                PQfinish(connection)
                throw error
            }
            state = PQconnectPoll(connection)
        }
        return connection
    }

    private func startReplication(_ connection: OpaquePointer) throws {
        // The slot name is ours (lower-case letters, digits, underscores) and quoted anyway.
        let command = """
            START_REPLICATION SLOT "\(slot.replacingOccurrences(of: "\"", with: "\"\""))" LOGICAL 0/0 \
            ("format-version" '2', "include-timestamp" '1', "include-types" '1', "include-transaction" '1')
            """
        guard PQsendQuery(connection, command) == 1 else { throw Failure(description: Self.message(connection)) }
        let deadline = ContinuousClock.now + .seconds(30)
        while PQisBusy(connection) == 1 {
            guard try waitFor(PQsocket(connection), readable: true, until: deadline) else { throw CancellationError() }
            guard PQconsumeInput(connection) == 1 else { throw Failure(description: Self.message(connection)) }
        }
        let result = PQgetResult(connection)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            throw Failure(description: String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    private func stream(_ connection: OpaquePointer, into continuation: AsyncThrowingStream<Transaction, any Error>.Continuation) throws {
        var open: [ChangeEvent]?
        var stamp: String?
        var reported: UInt64 = 0
        var lastReport = ContinuousClock.now
        func handOver(_ events: [ChangeEvent], end: UInt64?) {
            condition.lock()
            undelivered += 1
            condition.unlock()
            continuation.yield(Transaction(events: events, end: end))
        }
        while true {
            condition.lock()
            while undelivered >= window && !stopped {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 1))
                break
            }
            let stop = stopped
            let flushed = confirmed
            let behind = undelivered >= window
            condition.unlock()
            if stop {
                // What was dispatched is confirmed before letting go, or it comes again next time.
                try? report(connection, flushed: flushed)
                return
            }
            // Tell the server what it may forget as soon as it moves, and every 10 s regardless
            // (it drops a standby that stays silent for wal_sender_timeout).
            if flushed > reported || ContinuousClock.now - lastReport > .seconds(10) {
                try report(connection, flushed: flushed)
                reported = flushed
                lastReport = .now
            }
            if behind { continue }
            // What libpq already holds first (messages that came with the stream's start, or
            // more than one read's worth); the socket only once that is drained.
            var drained = false
            while !drained {
                var buffer: UnsafeMutablePointer<CChar>?
                let length = PQgetCopyData(connection, &buffer, 1)
                if length == 0 {
                    drained = true
                    continue
                }
                if length == -1 { throw Failure(description: Self.endMessage(connection)) }
                guard length > 0, let buffer else { throw Failure(description: Self.message(connection)) }
                defer { PQfreemem(buffer) }
                let bytes = UnsafeRawBufferPointer(start: buffer, count: Int(length))
                switch bytes[0] {
                case UInt8(ascii: "w") where bytes.count >= 25:
                    let start = Self.bigEndian(bytes, at: 1)
                    let text = String(decoding: bytes[25...], as: UTF8.self)
                    if text.hasPrefix("{\"action\":\"B\"") {
                        open = []
                        stamp = (try? JSONValue.parse(Array(text.utf8)))?["timestamp"]?.stringValue
                    } else if text.hasPrefix("{\"action\":\"C\"") {
                        handOver(open ?? [], end: start)
                        open = nil
                    } else {
                        do {
                            if var event = try Wal2JSONDecoder.decode(text, commitTimestamp: stamp) {
                                event.position = start
                                open?.append(event)
                            }
                        } catch {
                            logger.error("skipping a change wal2json wrote that cannot be read", metadata: ["error": .string("\(error)")])
                        }
                        // A huge transaction goes over in parts (confirmed only at its commit),
                        // so memory holds at most `window` parts, whatever its size.
                        if let events = open, events.count >= Self.partSize {
                            handOver(events, end: nil)
                            open = []
                        }
                    }
                case UInt8(ascii: "k") where bytes.count >= 18:
                    // A keepalive: with nothing open or undelivered, everything the server has sent
                    // is handled, so the slot may move up to it (WAL of other databases and
                    // idle periods is not kept for us).
                    let end = Self.bigEndian(bytes, at: 1)
                    condition.lock()
                    if open == nil && undelivered == 0 { confirmed = max(confirmed, end) }
                    let flushed = confirmed
                    condition.unlock()
                    if bytes[17] != 0 {
                        try report(connection, flushed: flushed)
                        reported = flushed
                        lastReport = .now
                    }
                default:
                    continue
                }
            }
            // One wait of at most 100 ms, then round again: a stop, or a dispatch to confirm,
            // must not wait for the next message.
            guard try pollOnce(PQsocket(connection), readable: true) else { continue }
            guard PQconsumeInput(connection) == 1 else { throw Failure(description: Self.message(connection)) }
        }
    }

    /// Changes handed over at once at most, within one transaction.
    static let partSize = 1000

    /// Why the server ended the stream: its error, when it sent one.
    private static func endMessage(_ connection: OpaquePointer) -> String {
        var words = "the server ended the replication stream"
        while let result = PQgetResult(connection) {
            let text = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { words = text }
            PQclear(result)
        }
        return words
    }

    /// A standby status update: written, flushed and applied up to `flushed`.
    private func report(_ connection: OpaquePointer, flushed: UInt64) throws {
        var message: [UInt8] = [UInt8(ascii: "r")]
        for position in [flushed, flushed, flushed] { Self.append(position, to: &message) }
        // Microseconds since 2000-01-01, the server's epoch.
        Self.append(UInt64(max(0, (Date().timeIntervalSince1970 - 946_684_800) * 1_000_000)), to: &message)
        message.append(0)
        let sent = message.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(connection, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1 else { throw Failure(description: Self.message(connection)) }
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let flush = PQflush(connection)
            if flush == 0 { return }
            guard flush == 1 else { throw Failure(description: Self.message(connection)) }
            // A stop does not cut a status update short: it is what saves redelivery after restart.
            _ = try waitFor(PQsocket(connection), readable: false, until: deadline, evenWhenStopped: true)
        }
    }

    /// Waits until the socket is ready (true) or the stream is stopped (false), polling at most
    /// 100 ms at a time so that a stop is seen at once.
    private func waitFor(
        _ socket: Int32, readable: Bool, until deadline: ContinuousClock.Instant?, evenWhenStopped: Bool = false
    ) throws -> Bool {
        while true {
            if !evenWhenStopped && isStopped { return false }
            if let deadline, ContinuousClock.now > deadline { throw Failure(description: "timed out waiting for the server") }
            if try pollOnce(socket, readable: readable) { return true }
        }
    }

    /// Whether the socket became ready within 100 ms.
    private func pollOnce(_ socket: Int32, readable: Bool) throws -> Bool {
        guard socket >= 0 else { throw Failure(description: "the connection has no socket") }
        var descriptor = pollfd(fd: socket, events: Int16(readable ? POLLIN : POLLOUT), revents: 0)
        let ready = poll(&descriptor, 1, 100)
        if ready < 0 && errno != EINTR { throw Failure(description: "poll failed: errno \(errno)") }
        return ready > 0
    }

    private static func message(_ connection: OpaquePointer?) -> String {
        guard let text = PQerrorMessage(connection) else { return "libpq failed" }
        return String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func bigEndian(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in offset..<offset + 8 { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    private static func append(_ value: UInt64, to message: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}

extension PostgresURL {
    /// libpq's connection keywords for a logical replication connection to this database. TCP
    /// keepalives notice a server that vanished without closing the socket.
    var replicationParameters: [(String, String)] {
        var parameters: [(String, String)] = [
            ("host", host), ("port", String(port)), ("user", username), ("dbname", database),
            ("replication", "database"), ("sslmode", sslMode.rawValue), ("connect_timeout", "5"),
            ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
            ("application_name", applicationName ?? "mini-baas realtime"),
        ]
        if let password { parameters.append(("password", password)) }
        // libpq 15 verifies against ~/.postgresql/root.crt unless told otherwise; the system's
        // roots are what postgres-nio uses for the same URL.
        if sslMode == .verifyCA || sslMode == .verifyFull, FileManager.default.fileExists(atPath: "/etc/ssl/certs/ca-certificates.crt") {
            parameters.append(("sslrootcert", "/etc/ssl/certs/ca-certificates.crt"))
        }
        return parameters
    }
}
