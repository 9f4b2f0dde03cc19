/// A request to a cluster that did not succeed.
///
/// A struct with a code rather than an enum, so that codes can be added without breaking callers (as
/// `HTTPClientError` does).
public struct ElasticError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Code: Sendable, Equatable {
        case unreachable
        case rejected
        case invalidResponse
    }

    let code: Code
    /// The cluster's HTTP status, when it answered.
    public let status: Int?
    /// What failed, with the cluster's reason; never a credential.
    public let message: String

    init(_ code: Code, status: Int? = nil, message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    /// No response came: the cluster could not be reached, or the connection failed or timed out.
    public static let unreachable = ElasticError(.unreachable, message: "")
    /// The cluster answered with an error status.
    public static let rejected = ElasticError(.rejected, message: "")
    /// The cluster answered, but not with a JSON body within ``ElasticClient/maximumResponseBytes`` (a proxy's page,
    /// a service that is not Elasticsearch).
    public static let invalidResponse = ElasticError(.invalidResponse, message: "")

    /// Whether the same request may pass later: no answer, a 429 (`es_rejected_execution_exception`) or a 5xx.
    public var isRetryable: Bool {
        switch code {
        case .unreachable: true
        case .rejected: status.map { $0 == 429 || $0 >= 500 } ?? false
        case .invalidResponse: false
        }
    }

    public var description: String { message }

    /// Errors are equal when their codes are: `#expect(throws: ElasticError.unreachable)` matches any unreachable
    /// cluster.
    public static func == (lhs: ElasticError, rhs: ElasticError) -> Bool { lhs.code == rhs.code }
}
