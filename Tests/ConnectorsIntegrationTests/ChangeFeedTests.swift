import Foundation
import Logging
import PostgresNIO
import Tenancy
import TestSupport
import XCTest
@testable import Connectors

/// The change feed against the suite's real PostgreSQL (wal_level=logical, wal2json): changes
/// streamed over libpq's replication protocol, in commit order, confirmed only once dispatched.
final class ChangeFeedTests: XCTestCase {
    private actor Received {
        var events: [ChangeEvent] = []
        func add(_ more: [ChangeEvent]) { events += more }
        func count() -> Int { events.count }
    }

    func testChangesStreamInCommitOrderAndResumeFromTheSlot() async throws {
        let url = try PostgresURL(try await TestServices.freshDatabase(prefix: "feed"))
        let logger = Logger(label: "test.feed")
        let slot = PostgresChangeFeed.slotName(tenant: "feed\(UInt32.random(in: 0...UInt32.max))", source: "main")
        try await sql(url, "create table items (id int primary key, name text, tags jsonb)")
        let feed = PostgresChangeFeed(slot: slot, url: url, logger: logger)
        try await feed.prepare()
        let initial = try await confirmedPosition(url, slot: slot)

        let first = Received()
        let running = Task { try await feed.run { await first.add($0) } }
        try await sql(url, """
            begin;
            insert into items values (1, 'a', '{"k": 1}'), (2, 'b', null);
            commit;
            insert into items values (3, 'c', null);
            update items set name = 'A' where id = 1;
            delete from items where id = 2;
            """)
        let allArrived = await waitUntil(timeout: .seconds(10)) { await first.count() >= 5 }
        XCTAssertTrue(allArrived, "five changes streamed")
        let events = await first.events
        XCTAssertEqual(events.map(\.kind), [.insert, .insert, .insert, .update, .delete])
        XCTAssertEqual(events.map { $0.record["id"] ?? $0.oldRecord["id"] }, [1, 2, 3, 1, 2])
        XCTAssertEqual(events.first?.record["tags"], ["k": 1])
        XCTAssertTrue(events.allSatisfy { $0.commitTimestamp.contains("T") }, "every change carries its commit time")

        // A transaction larger than one part (1,000 changes) arrives whole and in order.
        try await sql(url, "insert into items select g, 'bulk', null from generate_series(10, 2509) g")
        let bulkArrived = await waitUntil(timeout: .seconds(20)) { await first.count() >= 2505 }
        XCTAssertTrue(bulkArrived, "2,500 changes of one transaction streamed")
        let bulk = await first.events.dropFirst(5).compactMap { $0.record["id"]?.doubleValue }
        XCTAssertEqual(bulk, (10...2509).map(Double.init))

        // Dispatched changes are confirmed to the server, so WAL is not kept for them.
        let advanced = try await waitUntil(timeout: .seconds(15)) { try await self.confirmedPosition(url, slot: slot) > initial }
        XCTAssertTrue(advanced, "the slot's confirmed position moves once changes are dispatched")

        // A second reader of the same slot is refused by the server, in its words.
        do {
            try await PostgresChangeFeed(slot: slot, url: url, logger: logger).run { _ in }
            XCTFail("a second reader of an active slot must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("active"), "\(error)")
        }

        // Stopping lets go of the slot at once; changes committed meanwhile wait in it.
        running.cancel()
        let released = try await waitUntil(timeout: .seconds(5)) { try await !self.slotActive(url, slot: slot) }
        XCTAssertTrue(released, "a stopped feed releases the slot")
        try await sql(url, "insert into items values (4, 'while stopped', null)")

        let second = Received()
        let resumed = Task { try await PostgresChangeFeed(slot: slot, url: url, logger: logger).run { await second.add($0) } }
        let backlog = await waitUntil(timeout: .seconds(10)) { await second.count() >= 1 }
        XCTAssertTrue(backlog, "the change committed while no feed ran arrives")
        try await Task.sleep(for: .milliseconds(300))
        let resumedEvents = await second.events
        XCTAssertEqual(resumedEvents.map { $0.record["id"] }, [4], "only what was not confirmed before is delivered again")
        resumed.cancel()
        _ = try await waitUntil(timeout: .seconds(5)) { try await !self.slotActive(url, slot: slot) }

        await PostgresChangeFeed.dropSlot(slot, url: url, logger: logger)
        let remaining = try await slotCount(url, slot: slot)
        XCTAssertEqual(remaining, 0)
    }

    func testUnreachableServerFailsWithTheReason() async throws {
        let url = try PostgresURL("postgresql://nobody@127.0.0.1:1/none?sslmode=disable")
        let feed = ReplicationStream(parameters: url.replicationParameters, slot: "mb_none", logger: Logger(label: "test.feed"))
        do {
            try await feed.run { _ in }
            XCTFail("connecting to a closed port must fail")
        } catch {
            XCTAssertTrue("\(error)".lowercased().contains("connect"), "\(error)")
        }
    }

    private func sql(_ url: PostgresURL, _ text: String) async throws {
        // Through psql's simple protocol: several statements, explicit transactions.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["postgresql://\(url.username)@\(url.host):\(url.port)/\(url.database)", "-qX", "-v", "ON_ERROR_STOP=1", "-c", text]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
    }

    private func confirmedPosition(_ url: PostgresURL, slot: String) async throws -> Int64 {
        try await scalar(url, "select coalesce(confirmed_flush_lsn - '0/0', 0)::int8 from pg_replication_slots where slot_name = $1", slot) ?? 0
    }

    private func slotActive(_ url: PostgresURL, slot: String) async throws -> Bool {
        try await scalar(url, "select (case when active then 1 else 0 end)::int8 from pg_replication_slots where slot_name = $1", slot) == 1
    }

    private func slotCount(_ url: PostgresURL, slot: String) async throws -> Int64 {
        try await scalar(url, "select count(*)::int8 from pg_replication_slots where slot_name = $1", slot) ?? -1
    }

    private func scalar(_ url: PostgresURL, _ text: String, _ slot: String) async throws -> Int64? {
        try await TestServices.withClient(url) { client in
            var bindings = PostgresBindings()
            bindings.append(slot)
            let rows = try await client.query(PostgresQuery(unsafeSQL: text, binds: bindings))
            for try await value in rows.decode(Int64.self) { return value }
            return nil
        }
    }
}
