import QuarryCore

/// A request to a cluster that did not succeed, with what the cluster said: Elasticsearch's error `type`, `reason`,
/// HTTP `status` and root causes.
///
/// A struct with a code rather than an enum, so that codes can be added without breaking callers (as
/// `HTTPClientError` does).
public struct ElasticError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Code: Sendable, Equatable {
        case unreachable
        case rejected
        case invalidResponse
        case untrusted
    }

    let code: Code
    /// The cluster's HTTP status, when it answered.
    public let status: Int?
    /// What failed, with the cluster's reason; never a credential.
    public let message: String
    /// Elasticsearch's exception name (`index_not_found_exception`), when the cluster gave one.
    public var type: String?
    /// Elasticsearch's `reason`.
    public var reason: String?
    /// `error.root_cause`: the innermost failures, each `(type, reason)`.
    public var rootCauses: [(type: String, reason: String)] = []

    init(_ code: Code, status: Int? = nil, message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    /// An error status with Elasticsearch's error body (`{"error": {...}, "status": N}`, or the short
    /// `{"error": "text"}`).
    init(rejection body: JSON, status: Int, action: String) {
        let error = body["error"]
        // The message names the root cause; `reason` keeps the cluster's own.
        let cause = ElasticsearchErrorBody.reason(body) ?? "HTTP \(status)"
        self.init(.rejected, status: status, message: "\(action) failed: \(status) \(cause)")
        type = error?["type"]?.stringValue
        reason = error?["reason"]?.stringValue ?? error?.stringValue ?? "HTTP \(status)"
        rootCauses = (error?["root_cause"]?.arrayValue ?? []).map {
            ($0["type"]?.stringValue ?? "", $0["reason"]?.stringValue ?? "")
        }
    }

    /// No response came: the cluster could not be reached, or the connection failed or timed out.
    public static let unreachable = ElasticError(.unreachable, message: "")
    /// The cluster answered with an error status.
    public static let rejected = ElasticError(.rejected, message: "")
    /// The cluster answered, but not with a JSON body within ``ElasticClient/Configuration/maximumResponseBytes`` (a
    /// proxy's page, a service that is not Elasticsearch).
    public static let invalidResponse = ElasticError(.invalidResponse, message: "")
    /// The cluster's certificate is not the one pinned by fingerprint.
    public static let untrusted = ElasticError(.untrusted, message: "")

    /// Whether the same request may pass later: no answer, a 429 (`es_rejected_execution_exception`), or a 502, 503
    /// or 504 from a node or a proxy in front of it.
    public var isRetryable: Bool {
        switch code {
        case .unreachable: true
        case .rejected:
            type == "es_rejected_execution_exception" || status.map { [429, 502, 503, 504].contains($0) } ?? false
        case .invalidResponse, .untrusted: false
        }
    }

    public var description: String { message }

    /// Errors are equal when their codes are: `#expect(throws: ElasticError.unreachable)` matches any unreachable
    /// cluster.
    public static func == (lhs: ElasticError, rhs: ElasticError) -> Bool { lhs.code == rhs.code }
}
