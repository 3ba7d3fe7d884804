import Foundation
import Logging
import Runtime
import Tenancy

/// Sends e-mail jobs through the tenant's SMTP settings (read at each attempt, so fixed settings
/// take effect on the next retry). A 5xx reply or a refused address is final; anything else (a
/// 4xx, a dead connection, a timeout) is retried from one minute up to an hour apart.
public struct EmailDelivery: JobHandler {
    public static let kind = "email"
    public static let schedule = RetrySchedule(delays: [.zero, .seconds(60), .seconds(300), .seconds(900), .seconds(1800), .seconds(3600)])

    let store: any JobStore & AuthStore
    let secretBox: SecretBox

    public init(store: any JobStore & AuthStore, secretBox: SecretBox) {
        self.store = store
        self.secretBox = secretBox
    }

    public func retrySchedule(for job: JobRecord) -> RetrySchedule? { Self.schedule }

    /// The job of one message, sent at `at`.
    public static func job(tenant: String, id: String, message: MailMessage, tags: JSONValue, idempotencyKey: String?, bodyHash: String, at: Date, now: Date) -> JobRecord {
        func list(_ items: [String]) -> JSONValue { .array(items.map(JSONValue.string)) }
        var encoded: JSONObject = [
            "to": list(message.to), "cc": list(message.cc), "bcc": list(message.bcc), "reply_to": list(message.replyTo),
            "subject": .string(message.subject),
        ]
        encoded["from"] = message.from.map(JSONValue.string) ?? .null
        encoded["html"] = message.html.map(JSONValue.string) ?? .null
        encoded["text"] = message.text.map(JSONValue.string) ?? .null
        encoded["headers"] = .array(message.headers.map { [.string($0.0), .string($0.1)] })
        return JobRecord(
            tenant: tenant, id: id, kind: kind, key: idempotencyKey.map { "idem:" + $0 }, subject: "email",
            payload: ["message": .object(encoded), "tags": tags, "bodyHash": .string(bodyHash), "scheduled": .bool(at > now)],
            maxAttempts: schedule.maxAttempts, runAt: at, createdAt: now, updatedAt: now)
    }

    public static func message(from payload: JSONObject) -> MailMessage? {
        guard let fields = payload["message"]?.objectValue, let subject = fields["subject"]?.stringValue else { return nil }
        func list(_ key: String) -> [String] { fields[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        var message = MailMessage(to: list("to"), subject: subject, text: fields["text"]?.stringValue, html: fields["html"]?.stringValue)
        message.cc = list("cc")
        message.bcc = list("bcc")
        message.replyTo = list("reply_to")
        message.from = fields["from"]?.stringValue
        message.headers = (fields["headers"]?.arrayValue ?? []).compactMap { pair in
            guard let items = pair.arrayValue, items.count == 2, let name = items[0].stringValue, let value = items[1].stringValue else { return nil }
            return (name, value)
        }
        return message
    }

    public func runLogged(_ job: JobRecord) async -> (JobResult, JobAttempt?) {
        guard let message = Self.message(from: job.payload) else { return (.fail(error: "the stored message cannot be read"), nil) }
        let started = ContinuousClock.now
        var outcome: JobResult
        do {
            let settings = try await AuthService.settings(slug: job.tenant, store: store, secretBox: secretBox)
            guard let smtp = settings.smtp else { throw MailFailure.noSMTP }
            try await SMTPMailer(settings: smtp).send(message)
            outcome = .done
        } catch let error as SMTPError {
            outcome = error.isPermanent ? .fail(error: error.description) : .retry(error: error.description)
        } catch MailFailure.noSMTP {
            outcome = .retry(error: "MB850: the tenant has no SMTP settings", retryAfter: .seconds(300))
        } catch {
            outcome = .retry(error: "\(error)")
        }
        let elapsed = ContinuousClock.now - started
        var failure: String?
        switch outcome {
        case .done: failure = nil
        case .retry(let error, _), .fail(let error): failure = error
        }
        return (outcome, JobAttempt(
            tenant: job.tenant, job: job.id, attempt: job.attempt, at: Date(), httpStatus: nil,
            latencyMs: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000), error: failure, responseBody: nil))
    }

    enum MailFailure: Error { case noSMTP }
}
