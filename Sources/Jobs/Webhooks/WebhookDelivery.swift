import Foundation
import Logging
import Runtime
import Tenancy

/// Runs webhook delivery jobs: signs the stored body (Standard Webhooks, a fresh timestamp per
/// attempt, the same `webhook-id` on every one), posts it to the webhook's URL through the
/// outbound client, and logs the attempt. A 2xx is success; anything else is retried on the
/// webhook's schedule (`Retry-After` honoured); a target the outbound policy refuses is final.
public struct WebhookDelivery: JobHandler {
    public static let kind = "webhook"

    let webhooks: LiveWebhooks
    let client: OutboundClient
    public init(webhooks: LiveWebhooks, client: OutboundClient) {
        self.webhooks = webhooks
        self.client = client
    }

    /// A pending delivery of `body` by `webhook`.
    public static func job(tenant: String, webhook: LiveWebhook, id: String, body: JSONObject, now: Date) -> JobRecord {
        JobRecord(
            tenant: tenant, id: id, kind: kind, key: nil, subject: webhook.record.id,
            payload: ["webhook": .string(webhook.record.id), "event": .object(body)], maxAttempts: webhook.schedule.maxAttempts, runAt: now,
            createdAt: now, updatedAt: now)
    }

    public func retrySchedule(for job: JobRecord) -> RetrySchedule? {
        job.payload["webhook"]?.stringValue.flatMap { webhooks.webhook($0)?.schedule }
    }

    public func runLogged(_ job: JobRecord) async -> (JobResult, JobAttempt?) {
        guard let id = job.payload["webhook"]?.stringValue, let hook = webhooks.webhook(id) else {
            return (.fail(error: "the webhook was deleted"), nil)
        }
        guard hook.record.spec.enabled else {
            return (.retry(error: "the webhook is disabled; kept until it is enabled again", retryAfter: .seconds(300)), nil)
        }
        guard await hook.gate.acquire() else { return (.retry(error: "stopped before sending"), nil) }
        let answer = await deliver(hook, messageID: job.id, body: job.payload["event"] ?? .null)
        hook.gate.release()
        return (Self.result(answer), Self.log(answer, of: job))
    }

    /// 2xx: done; a refused target: final; anything else: again, when the receiver asked.
    static func result(_ answer: OutboundClient.Answer) -> JobResult {
        if answer.succeeded { return .done }
        let error = answer.error ?? "failed"
        if error.hasPrefix("MB821") || error.hasPrefix("MB820") { return .fail(error: error) }
        return .retry(error: error, retryAfter: answer.retryAfter.map { .seconds(min($0, 86_400)) })
    }

    static func log(_ answer: OutboundClient.Answer, of job: JobRecord) -> JobAttempt {
        JobAttempt(
            tenant: job.tenant, job: job.id, attempt: job.attempt, at: Date(), httpStatus: answer.status, latencyMs: answer.latencyMs,
            error: answer.error, responseBody: answer.body)
    }

    /// One signed attempt of `body` (a stored event, or the test event).
    public func deliver(_ hook: LiveWebhook, messageID: String, body: JSONValue) async -> OutboundClient.Answer {
        let bytes = body.encoded()
        let timestamp = Int64(Date().timeIntervalSince1970)
        var headers = hook.record.spec.headers.map { ($0.key, $0.value) }
        headers.append(("Content-Type", "application/json"))
        headers += hook.signer.headers(id: messageID, timestamp: timestamp, body: bytes)
        return await client.send(
            url: hook.record.spec.url, headers: headers, body: bytes, timeout: .milliseconds(hook.record.spec.timeoutMs))
    }
}
