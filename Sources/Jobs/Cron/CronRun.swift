import Foundation
import Logging
import Runtime
import Tenancy

/// Runs scheduled jobs' runs: the configured request to the target, signed like a webhook (the
/// run's id as `webhook-id`) with `x-minibaas-scheduled-at`, logged per attempt.
public struct CronRun: JobHandler {
    public static let kind = "cron"

    let crons: LiveCrons
    let client: OutboundClient
    public init(crons: LiveCrons, client: OutboundClient) {
        self.crons = crons
        self.client = client
    }

    /// The run of `cron` scheduled for `scheduledAt`; `status` other than pending records a run
    /// that did not happen (skipped, missed) with why.
    public static func job(tenant: String, cron: LiveCron, scheduledAt: Date, status: JobRecord.Status = .pending, why: String? = nil, now: Date) -> JobRecord {
        var job = JobRecord(
            tenant: tenant, id: LiveCron.runID(name: cron.record.name, scheduledAt: scheduledAt), kind: kind, key: nil,
            subject: LiveCron.subject(cron.record.name),
            payload: ["cron": .string(cron.record.name), "scheduledAt": .string(Self.timestamp(scheduledAt))], status: status,
            maxAttempts: cron.retries.maxAttempts, runAt: now, createdAt: now, updatedAt: now)
        job.lastError = why
        return job
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
    }

    public func retrySchedule(for job: JobRecord) -> RetrySchedule? {
        job.payload["cron"]?.stringValue.flatMap { crons.cron($0)?.retries }
    }

    public func runLogged(_ job: JobRecord) async -> (JobResult, JobAttempt?) {
        guard let name = job.payload["cron"]?.stringValue, let cron = crons.cron(name) else { return (.fail(error: "the scheduled job was deleted"), nil) }
        let target = cron.record.spec.target
        let body = Array((target.body ?? "").utf8)
        var headers = target.headers.map { ($0.key, $0.value) }
        if target.body != nil { headers.append(("Content-Type", "application/json")) }
        headers.append(("x-minibaas-scheduled-at", job.payload["scheduledAt"]?.stringValue ?? ""))
        headers += cron.signer.headers(id: job.id, timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let answer = await client.send(url: target.url, method: target.method, headers: headers, body: body, timeout: .seconds(30))
        return (WebhookDelivery.result(answer), WebhookDelivery.log(answer, of: job))
    }
}
