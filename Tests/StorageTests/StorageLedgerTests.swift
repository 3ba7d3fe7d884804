import XCTest

@testable import Storage

final class StorageLedgerTests: XCTestCase {
    func testReservationsAndStoredBytesTogetherStayWithinTheLimit() async throws {
        let ledger = StorageLedger()
        let load: () async throws -> Int = { 40 }
        let first = try await ledger.reserve(30, limit: 90, load: load)
        let second = try await ledger.reserve(30, limit: 90, load: load)
        XCTAssertTrue(first && !second, "40 stored + 30 reserved leaves room for 20, not 30")
        // Committing turns the reservation into stored bytes; nothing frees room in between.
        ledger.committed(added: 30, removed: 0, releasing: 30)
        let third = try await ledger.reserve(20, limit: 90, load: load)
        let fourth = try await ledger.reserve(1, limit: 90, load: load)
        XCTAssertTrue(third && !fourth)
        ledger.release(20)
        ledger.removed(70)
        let fifth = try await ledger.reserve(90, limit: 90, load: load)
        XCTAssertTrue(fifth)
    }

    func testClientDeclaredSizesCannotOverflow() async throws {
        let ledger = StorageLedger()
        _ = try await ledger.reserve(10, limit: 100, load: { 50 })
        let huge = try await ledger.reserve(Int.max, limit: 100, load: { 50 })
        let negative = try await ledger.reserve(-5, limit: 100, load: { 50 })
        XCTAssertFalse(huge)
        XCTAssertFalse(negative)
    }

    /// A load that overlapped a commit may have read the table before or after it: it is thrown
    /// away rather than allowed to forget the commit.
    func testALoadOverlappingACommitDoesNotUndoIt() async throws {
        let ledger = StorageLedger(refresh: 0)
        _ = try await ledger.reserve(0, limit: 100, load: { 0 })
        let reserved = try await ledger.reserve(60, limit: 100, load: { 0 })
        XCTAssertTrue(reserved)
        // The next reserve reloads (refresh 0); while it reads, the 60 bytes are committed, and
        // the table it read does not have them yet.
        let once = Once()
        let reservedAgain = try await ledger.reserve(60, limit: 100, load: {
            guard once.first() else { return 60 }  // read again: the table has the row now
            ledger.committed(added: 60, removed: 0, releasing: 60)
            return 0
        })
        XCTAssertFalse(reservedAgain, "the stale load must not count 60 committed bytes as free")
    }
}

final class Once: @unchecked Sendable {
    private var done = false
    func first() -> Bool {
        defer { done = true }
        return !done
    }
}
