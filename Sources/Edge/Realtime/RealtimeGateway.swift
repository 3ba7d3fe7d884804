import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Runtime
import Tenancy
import TenantRuntime

/// `GET {apiUrl}/realtime/v1/websocket?apikey=…&vsn=1.0.0`: upgrades to a WebSocket speaking
/// Phoenix channels v1, as Supabase Realtime does. It passes the same `TenantAdmission` as HTTP
/// requests; the tenant's owner serves the socket from the tenant tree's realtime hub, any other
/// node relays it frame by frame to the owner. A refused upgrade fails the handshake.
struct RealtimeGateway: Sendable {
    let admission: TenantAdmission
    let forwarder: OwnerForwarder
    private static let ids = IDSource()
    private static let wire = PhoenixWire()

    static let path = "/realtime/v1/websocket"

    typealias Upgrade = ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>

    /// Decides the upgrade. A refusal is an empty 400 (the upgrade path cannot answer more), with
    /// the reason in the node's log: the official client backs off and gives up after a failed
    /// handshake, while a socket closed after upgrading would make it reconnect at once, forever.
    func shouldUpgrade(_ head: HTTPRequest, channel: any Channel, logger: Logger) async -> Upgrade {
        guard let (slug, query) = Self.target(head) else { return .dontUpgrade }
        let lease: TenantLease
        let tree: TenantTree
        let caller: Caller
        do {
            switch try await admission.place(slug, hops: 0, logger: logger) {
            case .local(let held): lease = held
            case .remote(let member, _):
                let route = head.path ?? ""
                let plainPath = String(route.split(separator: "?", maxSplits: 1).first ?? "")
                guard forwarder.verifiedHops(head.headerFields[OwnerForwarder.hopsHeader], method: "GET", path: plainPath) == 0 else {
                    return Self.refusal("the tenant moved while this socket was forwarded; reconnect")
                }
                return proxy(to: member, path: route, plainPath: plainPath, logger: logger)
            }
            tree = try await admission.tree(slug, lease: lease, logger: logger)
            guard let apiKey = query["apikey"], !apiKey.isEmpty else { return Self.refusal("InvalidJWTToken: the apikey parameter is required") }
            caller = try TenantAdmission.caller(tree, apiKey: apiKey, authorization: nil)
        } catch {
            return Self.refusal(error.message)
        }
        let hub = tree.realtime.hub
        let limits = tree.tenant.limits.realtime
        return .upgrade([:]) { inbound, outbound, _ in
            let session = RealtimeSession(id: Self.ids.next(), caller: caller, outboxLimit: limits.outboundQueue, wire: Self.wire)
            if let refusal = await hub.admit(session) {
                try await outbound.write(.text(Self.wire.closing(reason: refusal)))
                try await outbound.close(.policyViolation, reason: "connection limit")
                return
            }
            // Writer and reader run side by side; when either ends (the client left, or was told
            // to go), the other is stopped and the socket closes.
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        while let item = await session.outbox.next() {
                            // NIO's own queue is kept under its high-water mark: a client that does
                            // not read leaves messages in the outbox, which is bounded.
                            while !channel.isWritable {
                                try await Task.sleep(for: .milliseconds(5))
                            }
                            switch item {
                            case .message(let text):
                                try await outbound.write(.text(text))
                            case .closing(let text):
                                try await outbound.write(.text(text))
                                try await outbound.close(.goingAway, reason: nil)
                                return
                            }
                        }
                    } catch {
                        logger.debug("realtime writer ended", metadata: ["error": .string("\(error)")])
                    }
                }
                group.addTask {
                    do {
                        for try await message in inbound.messages(maxSize: limits.maxPayloadBytes) {
                            tree.touch()
                            guard case .text(let text) = message else {
                                Self.notice("binary frames are not part of the protocol", to: session)
                                continue
                            }
                            let decoded: ChannelMessage
                            do {
                                decoded = try Self.wire.decode(text)
                            } catch {
                                Self.notice("unreadable message: \(error)", to: session)
                                continue
                            }
                            await Self.route(decoded, session: session, hub: hub)
                        }
                    } catch {
                        logger.debug("realtime socket ended", metadata: ["error": .string("\(error)")])
                    }
                }
                await group.next()
                group.cancelAll()
                session.outbox.finish()
            }
            await hub.remove(session)
        }
    }

    /// A notice on the socket's own `phoenix` topic (a frame the protocol cannot take).
    static func notice(_ text: String, to session: RealtimeSession) {
        session.send(wire.system(topic: "phoenix", channel: "phoenix", ok: false, message: text, extension: "system"), topic: "phoenix")
    }

    /// Phoenix's events, each to the hub's entry point for it.
    static func route(_ message: ChannelMessage, session: RealtimeSession, hub: RealtimeHub) async {
        switch (message.topic, message.event) {
        case ("phoenix", "heartbeat"): session.send(wire.reply(to: message, ok: true, response: [:]), topic: message.topic)
        case (_, "phx_join"): await hub.join(message, session: session)
        case (_, "phx_leave"): await hub.leave(message, session: session)
        case (_, "access_token"): await hub.refreshToken(message, session: session)
        case (_, "broadcast"): await hub.broadcast(message, session: session)
        case (_, "presence"): await hub.presence(message, session: session)
        default:
            session.send(wire.reply(to: message, ok: false, response: ["reason": .string("unknown event '\(message.event)'")]), topic: message.topic)
        }
    }

    /// A socket that reached a node which does not own the tenant is relayed, frame by frame, to
    /// the owner — the client never needs to know where the tenant lives.
    private func proxy(to member: ClusterMember, path: String, plainPath: String, logger: Logger) -> Upgrade {
        var headers = HTTPFields()
        headers[OwnerForwarder.hopsHeader] = forwarder.hopsHeaderValue(hops: 1, method: "GET", path: plainPath)
        let configuration = WebSocketClientConfiguration(maxFrameSize: 16 << 20, additionalHeaders: headers)
        let target = OwnerForwarder.webSocketAddress(member.address) + path
        return .upgrade([:]) { inbound, outbound, _ in
            try await WebSocketClient.connect(url: target, configuration: configuration, logger: logger) { upstreamInbound, upstreamOutbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await Self.relay(inbound, to: upstreamOutbound, closing: .normalClosure) }
                    group.addTask { try await Self.relay(upstreamInbound, to: outbound, closing: .goingAway) }
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    /// Copies every message from one socket to the other, then closes the other.
    private static func relay(_ from: WebSocketInboundStream, to: WebSocketOutboundWriter, closing code: WebSocketErrorCode) async throws {
        for try await message in from.messages(maxSize: 16 << 20) {
            switch message {
            case .text(let text): try await to.write(.text(text))
            case .binary(let bytes): try await to.write(.binary(bytes))
            }
        }
        try? await to.close(code, reason: nil)
    }

    static func refusal(_ reason: String) -> Upgrade {
        Logger(label: "minibaas.realtime").notice("realtime upgrade refused", metadata: ["reason": .string(reason)])
        return .dontUpgrade
    }

    /// `/t/{slug}/realtime/v1/websocket` and its query.
    static func target(_ head: HTTPRequest) -> (String, [String: String])? {
        guard head.method == .get, let path = head.path else { return nil }
        let parts = path.split(separator: "?", maxSplits: 1)
        let route = parts[0]
        guard route.hasPrefix("/t/"), route.hasSuffix(path.contains("?") ? Substring(Self.path) : Substring(Self.path)) else { return nil }
        let slug = route.dropFirst(3).dropLast(Self.path.count)
        guard Slug.isValid(String(slug)) else { return nil }
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard let key = kv.first?.removingPercentEncoding else { continue }
                query[key] = kv.count == 2 ? String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
            }
        }
        return (String(slug), query)
    }
}

/// Session ids, unique on this node.
final class IDSource: @unchecked Sendable {
    private let lock = Lock()
    private var last: UInt64 = 0
    func next() -> UInt64 {
        lock.withLock {
            last += 1
            return last
        }
    }
}
