import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Runtime

/// One e-mail: plain text, HTML, or both (sent as multipart/alternative).
public struct MailMessage: Sendable, Equatable {
    public var to: [String]
    public var cc: [String] = []
    public var bcc: [String] = []
    public var replyTo: [String] = []
    /// `Name <address>` or an address; nil: the SMTP settings' sender.
    public var from: String?
    public var subject: String
    public var text: String?
    public var html: String?
    /// Extra header lines (names and values already checked by the caller).
    public var headers: [(String, String)] = []

    public init(to: String, subject: String, text: String) {
        self.to = [to]
        self.subject = subject
        self.text = text
    }

    public init(to: [String], subject: String, text: String?, html: String?) {
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
    }

    public static func == (lhs: MailMessage, rhs: MailMessage) -> Bool {
        lhs.to == rhs.to && lhs.cc == rhs.cc && lhs.bcc == rhs.bcc && lhs.replyTo == rhs.replyTo && lhs.from == rhs.from && lhs.subject == rhs.subject
            && lhs.text == rhs.text && lhs.html == rhs.html && lhs.headers.map(\.0) == rhs.headers.map(\.0) && lhs.headers.map(\.1) == rhs.headers.map(\.1)
    }

    /// The bare address of `Name <address>` (or of an address).
    public static func address(_ mailbox: String) -> String {
        guard let open = mailbox.lastIndex(of: "<"), mailbox.hasSuffix(">") else { return mailbox.trimmingCharacters(in: .whitespaces) }
        return String(mailbox[mailbox.index(after: open)..<mailbox.index(before: mailbox.endIndex)]).trimmingCharacters(in: .whitespaces)
    }
}

/// Sends mail over SMTP (RFC 5321): implicit TLS on port 465, STARTTLS elsewhere when `tls` is set,
/// AUTH PLAIN when a username is configured. Postmark, Resend and any relay speak this. One
/// connection per message: auth mail is rare, and a kept-open connection would need its own health.
public struct SMTPMailer: Sendable {
    public let settings: SMTPSettings
    public var timeout: Duration = .seconds(15)

    public init(settings: SMTPSettings) {
        self.settings = settings
    }

    public func send(_ message: MailMessage) async throws {
        let sender = MailMessage.address(message.from ?? settings.from)
        for address in [sender] + message.to + message.cc + message.bcc + message.replyTo.map(MailMessage.address) where !Self.isSafeAddress(address) {
            throw SMTPError.invalidAddress(address)
        }
        if let from = message.from, !Self.isSafeHeader(from) { throw SMTPError.invalidAddress(from) }
        try await withTimeout(timeout) { try await deliver(message) }
    }

    /// A header value may not end its line.
    public static func isSafeHeader(_ value: String) -> Bool {
        !value.unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" || $0 == "\u{7f}" }
    }

    /// Addresses go into the SMTP dialogue and headers verbatim, so anything that could end a line
    /// or a path is refused.
    public static func isSafeAddress(_ address: String) -> Bool {
        !address.isEmpty && address.utf8.count <= 254 && address.contains("@")
            && !address.unicodeScalars.contains { $0.value < 0x21 || $0 == "<" || $0 == ">" || $0 == "\u{7f}" }
    }

    private func deliver(_ message: MailMessage) async throws {
        let implicitTLS = settings.tls && settings.port == 465
        let host = settings.host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS { try channel.pipeline.syncOperations.addHandler(try Self.tlsHandler(host: host)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var dialogue = SMTPDialogue(inbound: inbound.makeAsyncIterator(), outbound: outbound)
            try await dialogue.expect(220)
            try await dialogue.command("EHLO minibaas", expect: 250)
            if settings.tls && !implicitTLS {
                try await dialogue.command("STARTTLS", expect: 220)
                // Anything already buffered was sent in clear before the handshake: an injection.
                guard dialogue.pending.isEmpty else { throw SMTPError.protocolViolation("data after STARTTLS reply") }
                try await channel.channel.pipeline.addHandler(try Self.tlsHandler(host: host), position: .first).get()
                try await dialogue.command("EHLO minibaas", expect: 250)
            }
            if let username = settings.username {
                let credentials = Array("\0\(username)\0\(settings.password ?? "")".utf8)
                try await dialogue.command("AUTH PLAIN " + Data(credentials).base64EncodedString(), expect: 235)
            }
            try await dialogue.command("MAIL FROM:<\(MailMessage.address(message.from ?? settings.from))>", expect: 250)
            for recipient in message.to + message.cc + message.bcc {
                try await dialogue.command("RCPT TO:<\(recipient)>", expect: 250, 251)
            }
            try await dialogue.command("DATA", expect: 354)
            try await dialogue.send(Self.render(message, from: message.from ?? settings.from) + "\r\n.\r\n")
            try await dialogue.expect(250)
            try? await dialogue.command("QUIT", expect: 221)
        }
    }

    private static func tlsHandler(host: String) throws -> NIOSSLClientHandler {
        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
        return try NIOSSLClientHandler(context: context, serverHostname: host)
    }

    /// Headers and a dot-stuffed body (RFC 5321 §4.5.2), lines ending in CRLF: plain text, HTML,
    /// or both as multipart/alternative. Bcc recipients get the mail but no header names them.
    static func render(_ message: MailMessage, from: String) -> String {
        let date = DateFormatter()
        date.locale = Locale(identifier: "en_US_POSIX")
        date.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        func flat(_ text: String) -> String { text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }
        // A subject that is not ASCII goes as an RFC 2047 encoded word.
        let subject = flat(message.subject)
        let encodedSubject = subject.allSatisfy(\.isASCII) ? subject : "=?utf-8?B?\(Data(subject.utf8).base64EncodedString())?="
        var lines = ["From: \(flat(from))", "To: \(message.to.joined(separator: ", "))"]
        if !message.cc.isEmpty { lines.append("Cc: \(message.cc.joined(separator: ", "))") }
        if !message.replyTo.isEmpty { lines.append("Reply-To: \(message.replyTo.map(flat).joined(separator: ", "))") }
        lines += ["Subject: \(encodedSubject)", "Date: \(date.string(from: Date()))", "Message-ID: <\(UUID().uuidString)@minibaas>", "MIME-Version: 1.0"]
        for (name, value) in message.headers { lines.append("\(name): \(flat(value))") }
        func body(_ text: String) -> [String] {
            text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.hasPrefix(".") ? "." + line : String(line)
            }
        }
        switch (message.text, message.html) {
        case (let text?, let html?):
            let boundary = "mb-" + UUID().uuidString
            lines += ["Content-Type: multipart/alternative; boundary=\"\(boundary)\"", "", "--\(boundary)",
                      "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""]
            lines += body(text)
            lines += ["--\(boundary)", "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""]
            lines += body(html)
            lines.append("--\(boundary)--")
        case (nil, let html?):
            lines += ["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""] + body(html)
        case (let text, nil):
            lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""] + body(text ?? "")
        }
        return lines.joined(separator: "\r\n")
    }
}

/// Reads SMTP replies (multi-line ones included) and writes commands.
private struct SMTPDialogue {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var pending: [UInt8] = []

    mutating func command(_ line: String, expect codes: Int...) async throws {
        try await send(line + "\r\n")
        let reply = try await readReply()
        guard codes.contains(reply.code) else { throw SMTPError.rejected(command: String(line.prefix(10)), code: reply.code, reply: reply.text) }
    }

    mutating func expect(_ code: Int) async throws {
        let reply = try await readReply()
        guard reply.code == code else { throw SMTPError.rejected(command: "", code: reply.code, reply: reply.text) }
    }

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    private mutating func readReply() async throws -> (code: Int, text: String) {
        var text = ""
        while true {
            let line = try await readLine()
            text += line + " "
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(decoding: bytes.prefix(3), as: UTF8.self)) else {
                throw SMTPError.protocolViolation(line)
            }
            // "250-…" continues a multi-line reply; "250 …" (or a bare code) ends it.
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") { return (code, text.trimmingCharacters(in: .whitespaces)) }
            guard bytes[3] == UInt8(ascii: "-") else { throw SMTPError.protocolViolation(line) }
        }
    }

    private mutating func readLine() async throws -> String {
        while true {
            if let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(pending[..<end])
                pending.removeSubrange(...end)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard pending.count < 4096 else { throw SMTPError.protocolViolation("reply line too long") }
            guard let buffer = try await inbound.next() else { throw SMTPError.connectionClosed }
            pending += buffer.readableBytesView
        }
    }
}

public enum SMTPError: Error, CustomStringConvertible {
    /// A 5xx reply: the server will not take this message, however often it is tried.
    public var isPermanent: Bool {
        switch self {
        case .rejected(_, let code, _): (500..<600).contains(code)
        case .invalidAddress: true
        default: false
        }
    }

    case invalidAddress(String)
    case rejected(command: String, code: Int, reply: String)
    case protocolViolation(String)
    case connectionClosed

    public var description: String {
        switch self {
        case .invalidAddress(let address): "'\(address)' is not a usable e-mail address"
        case .rejected(let command, _, let reply): "SMTP server refused \(command.isEmpty ? "the message" : command): \(reply)"
        case .protocolViolation(let line): "SMTP server sent something unexpected: \(line.prefix(80))"
        case .connectionClosed: "SMTP server closed the connection"
        }
    }
}
