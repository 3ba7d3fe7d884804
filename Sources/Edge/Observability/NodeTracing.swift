import Foundation
import Logging
import OTel
import Runtime
import ServiceLifecycle
import Tracing

/// Trace export, on only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set:
/// OTLP over HTTP with protobuf, batched in the background (`OTEL_BSP_SCHEDULE_DELAY`, 5 s by
/// default), with `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_SERVICE_NAME` honoured as the
/// specification says. A slow or unreachable collector costs a bounded queue, never a request's
/// time. Logs and metrics stay the node's own (stderr and `/metrics`).
enum NodeTracing {
    static func wanted(_ environment: [String: String]) -> Bool {
        let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? ""
        return !endpoint.isEmpty && environment["OTEL_TRACES_EXPORTER"] != "none" && environment["OTEL_SDK_DISABLED"] != "true"
    }

    /// Bootstraps the process's tracer and returns the exporter's service (run it beside the
    /// server; it flushes on shutdown), or nil when tracing is not configured.
    static func start(environment: [String: String], nodeID: String, logger: Logger) throws -> (any Service)? {
        guard wanted(environment) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "minibaas"
        configuration.resourceAttributes["service.instance.id"] = nodeID
        configuration.resourceAttributes["service.version"] = MiniBaasCommand.version
        configuration.diagnosticLogger = .custom(logger)
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.timeout = .seconds(5)
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        TraceSwitch.enable()
        return service
    }
}
