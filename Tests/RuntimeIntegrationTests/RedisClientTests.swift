import Foundation
import Logging
import XCTest
@testable import Runtime

/// The Redis client against the real redis-server the test command starts.
final class RedisClientTests: XCTestCase {
    func url() throws -> RedisURL {
        guard let text = ProcessInfo.processInfo.environment["MINIBAAS_TEST_REDIS_URL"] else {
            struct Missing: Error, CustomStringConvertible { var description: String { "MINIBAAS_TEST_REDIS_URL is not set: run ./scripts/test" } }
            throw Missing()
        }
        return try RedisURL(text)
    }

    func testCommandsPipeliningAndBinarySafety() async throws {
        let connection = try await RedisConnection.connect(try url())
        defer { Task { await connection.close() } }
        let key = "mb-test-\(UUID().uuidString)"
        let payload = "line\r\nbreak \u{0} and ünïcode"
        let value1 = try await connection.send(["SET", key, payload, "PX", "5000", "NX"])
        XCTAssertEqual(value1, .status("OK"))
        let value2 = try await connection.send(["SET", key, "other", "NX"])
        XCTAssertEqual(value2, .null, "NX refuses a taken key")
        let value3 = try await connection.send(["GET", key])
        XCTAssertEqual(value3, .string(payload))
        // Many commands in one write, replies in order.
        let counter = key + ":n"
        let replies = try await connection.pipeline((0..<500).map { _ in ["INCR", counter] })
        XCTAssertEqual(replies.map(\.integer), (1...500).map { Int64($0) })
        let value4 = try await connection.send(["NOSUCHCOMMAND"]).string
        XCTAssertEqual(value4, nil)
        let unknown = try await connection.send(["NOSUCHCOMMAND"])
        if case .error(let message) = unknown {
            XCTAssertTrue(message.contains("unknown command"), message)
        } else {
            XCTFail("an unknown command is an error reply")
        }
        // Concurrent callers share the connection without mixing replies.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    let own = "\(key):\(index)"
                    _ = try await connection.send(["SET", own, String(index)])
                    let value = try await connection.send(["GET", own])
                    XCTAssertEqual(value, .string(String(index)))
                }
            }
            try await group.waitForAll()
        }
        _ = try await connection.send(["DEL", key, counter])
    }

    func testPublishSubscribe() async throws {
        let url = try url()
        let client = RedisClient(url: url, logger: Logger(label: "test"))
        let channel = "mb-test-\(UUID().uuidString)"
        let (subscriber, messages) = try await client.subscribe([channel])
        defer { Task { await subscriber.close() } }
        let receivers = try await client.send(["PUBLISH", channel, "hello"])
        XCTAssertEqual(receivers, .integer(1))
        _ = try await client.send(["PUBLISH", channel, "world"])
        var received: [String] = []
        for await message in messages {
            XCTAssertEqual(message.channel, channel)
            received.append(message.payload)
            if received.count == 2 { break }
        }
        XCTAssertEqual(received, ["hello", "world"])
        await client.close()
    }

    func testConcurrentFirstCommandsShareOneConnection() async throws {
        let probe = try await RedisConnection.connect(try url())
        defer { Task { await probe.close() } }
        func connectedClients() async throws -> Int {
            let info = try await probe.send(["INFO", "clients"]).string ?? ""
            let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("connected_clients:") }
            return Int(line?.split(separator: ":").last ?? "") ?? -1
        }
        let before = try await connectedClients()
        let client = RedisClient(url: try url(), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 { group.addTask { _ = try await client.send(["PING"]) } }
            try await group.waitForAll()
        }
        let after = try await connectedClients()
        XCTAssertEqual(after - before, 1, "callers arriving during the connect wait for it instead of opening their own")
        await client.close()
    }

    func testAnUnreachableRedisFailsFastAndIsRetriedAfterTheBackoff() async throws {
        let dead = try RedisURL("redis://127.0.0.1:1")
        let client = RedisClient(url: dead, backoff: Backoff(base: .milliseconds(200), cap: .seconds(1)), logger: Logger(label: "test"))
        let started = ContinuousClock.now
        do {
            _ = try await client.send(["PING"])
            XCTFail("nothing listens there")
        } catch {
            guard case .unavailable = error else { return XCTFail("\(error)") }
        }
        do {
            _ = try await client.send(["PING"])
            XCTFail("still nothing")
        } catch {
            XCTAssertTrue("\(error)".contains("reconnecting"), "within the backoff the client does not even try: \(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
        XCTAssertThrowsError(try RedisURL("http://x"))
        XCTAssertEqual(try RedisURL("redis://user:p%40ss@h:7000/3"), try {
            var url = try RedisURL("redis://h")
            url.port = 7000
            url.username = "user"
            url.password = "p@ss"
            url.database = 3
            return url
        }())
    }

    func testAuthAndSelectFromTheURL() async throws {
        let base = try url()
        var selected = base
        selected.database = 2
        let connection = try await RedisConnection.connect(selected)
        let key = "mb-db-\(UUID().uuidString)"
        _ = try await connection.send(["SET", key, "in db 2"])
        await connection.close()
        let other = try await RedisConnection.connect(base)
        let value5 = try await other.send(["GET", key])
        XCTAssertEqual(value5, .null, "database 0 does not see database 2")
        await other.close()
        var wrong = base
        wrong.password = "not-the-password"
        do {
            _ = try await RedisConnection.connect(wrong)
            XCTFail("the test server has no password: AUTH must be refused")
        } catch {
            guard case .server = error else { return XCTFail("\(error)") }
        }
    }
}
