import Foundation
import HTTPTypes
import Hummingbird
import Prometheus
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryStories

/// The numbers `/metrics` serves in Prometheus' text format: requests by route and status, runs by story and
/// status, agent durations, and, read at each scrape, the delivery queue's depth and the store's documents and
/// bytes. One registry per web application (no process-wide bootstrap), so that tests run several side by side.
final class WebMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]

    // The metrics, named `quarry_<name>_<unit>`.
    static var httpRequestsTotal: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "http_requests",
            unitName: "total",
            helpText: "HTTP requests answered by the web application, by route, method and status."
        )
    }
    static var httpRequestDurationSeconds: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "http_request_duration",
            unitName: "seconds",
            helpText: "Time to answer a request, by route."
        )
    }
    static var runsStartedTotal: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "runs_started",
            unitName: "total",
            helpText: "Runs started, by story."
        )
    }
    static var runsFinishedTotal: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "runs_finished",
            unitName: "total",
            helpText: "Runs that ended, by story and status."
        )
    }
    static var agentAttemptsTotal: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "agent_attempts",
            unitName: "total",
            helpText: "Attempts of agents, by story, agent, type and outcome."
        )
    }
    static var agentDurationSeconds: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "agent_duration",
            unitName: "seconds",
            helpText: "Time one attempt of an agent took."
        )
    }
    static var queueDepth: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "queue_depth",
            unitName: "",
            helpText: "Deliveries waiting in the story engine's queue."
        )
    }
    static var stories: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "stories",
            unitName: "",
            helpText: "Stories loaded."
        )
    }
    static var storeIndices: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "store_indices",
            unitName: "",
            helpText: "Indices in the embedded store."
        )
    }
    static var storeDocuments: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "store_documents",
            unitName: "",
            helpText: "Documents in the embedded store."
        )
    }
    static var storeSizeBytes: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "quarry",
            metricName: "store_size",
            unitName: "bytes",
            helpText: "Bytes the embedded store's indices take."
        )
    }

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: Self.httpRequestsTotal,
            labels: [("route", route), ("method", method), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: Self.httpRequestDurationSeconds,
            labels: [("route", route)],
            buckets: Self.durationBuckets
        ).record(duration)
    }

    func record<EngineClock: Clock>(
        _ observation: StoryEngine<EngineClock>.Observation,
        agentType: (_ story: String, _ agent: String) -> String
    ) {
        switch observation {
        case .runStarted(let story):
            registry.makeCounter(descriptor: Self.runsStartedTotal, labels: [("story", story)]).increment()
        case .runEnded(let run):
            registry.makeCounter(
                descriptor: Self.runsFinishedTotal,
                labels: [("story", run.story), ("status", run.status.rawValue)]
            ).increment()
        case .stepEnded(let story, _, let step):
            let type = agentType(story, step.agent)
            registry.makeCounter(
                descriptor: Self.agentAttemptsTotal,
                labels: [("story", story), ("agent", step.agent), ("type", type), ("outcome", step.outcome.rawValue)]
            ).increment()
            registry.makeDurationHistogram(
                descriptor: Self.agentDurationSeconds,
                labels: [("story", story), ("agent", step.agent), ("type", type)],
                buckets: Self.durationBuckets
            ).record(.milliseconds(Int64(max(0, step.ended - step.started) * 1000)))
        }
    }

    /// Sets the gauges read at scrape time and renders the registry.
    func emit(queueDepth: Int?, stories: Int, store: EmbeddedStore?) -> String {
        if let queueDepth {
            registry.makeGauge(descriptor: Self.queueDepth)
                .set(Double(queueDepth))
        }
        registry.makeGauge(descriptor: Self.stories).set(Double(stories))
        if let store, let summaries = try? store.summaries() {
            registry.makeGauge(descriptor: Self.storeIndices)
                .set(Double(summaries.count))
            registry.makeGauge(descriptor: Self.storeDocuments)
                .set(Double(summaries.reduce(0) { $0 + $1.documentCount }))
            registry.makeGauge(descriptor: Self.storeSizeBytes)
                .set(Double(summaries.reduce(0) { $0 + $1.sizeInBytes }))
        }
        return registry.emitToString()
    }

    /// The route of a path with its variable segments named, so that labels stay few: `/runs/:id/stream`.
    static func routeLabel(_ path: String) -> String {
        var segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let base = segments.starts(with: ["api", "v1"]) ? 2 : 0
        guard segments.count > base else { return base == 0 ? "/" : "/api/v1" }
        switch segments[base] {
        case "stories", "runs", "forms", "credentials", "resources", "webhook":
            if segments.count > base + 1, segments[base + 1] != "lint" { segments[base + 1] = ":id" }
            if ["forms", "webhook"].contains(segments[base]), segments.count > base + 2 {
                segments[base + 2] = ":secret"
            }
            let actions: Set = [
                ":secret", "run", "dry-run", "download", "delete", "diagram.svg", "stream", "events", "runs",
            ]
            if segments.count > base + 2, !actions.contains(segments[base + 2]) { return "unmatched" }
            if segments.count > base + 3 { return "unmatched" }
        case "static", "login", "logout", "metrics", "healthz", "openapi.json":
            if segments.count > base + 2 { return "unmatched" }
        default:
            return "unmatched"
        }
        return "/" + segments.joined(separator: "/")
    }
}

/// Runs around every request of the web application: finds its user (session cookie or API token), counts it in
/// the metrics, and adds the security headers (a strict Content-Security-Policy: the pages load their script and
/// style from `/static`; no framing; no referrer, so a public form's secret link never leaks to other sites).
struct WebMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext

    let security: ElasticsearchSecurity
    let metrics: WebMetrics

    func handle(
        _ request: Request,
        context: WebRequestContext,
        next: (Request, WebRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.user = user(of: request)
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        let headers: [(HTTPField.Name, String)] = [
            (
                HTTPField.Name("Content-Security-Policy")!,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
            ),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        ]
        for (name, value) in headers where response.headers[name] == nil { response.headers[name] = value }
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        metrics.recordRequest(
            route: WebMetrics.routeLabel(request.uri.path),
            method: request.method.rawValue,
            status: response.status.code,
            duration: .now - started
        )
        return response
    }

    /// The session cookie's user, or the bearer token's; nil for anyone else (or a user with no web role).
    private func user(of request: Request) -> WebUser? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
            guard let authentication = security.userToken(token), let role = WebRole(roles: authentication.roles)
            else { return nil }
            return WebUser(username: authentication.username, role: role, session: nil)
        }
        guard let session = request.cookies[WebSite<ContinuousClock>.sessionCookie]?.value, !session.isEmpty,
            let authentication = security.session(session), let role = WebRole(roles: authentication.roles)
        else { return nil }
        return WebUser(username: authentication.username, role: role, session: session)
    }
}
