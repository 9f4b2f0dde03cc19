public import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
public import QuarryCore

/// A client for a remote Elasticsearch or OpenSearch cluster over HTTP(S): node URLs with failover, TLS options of
/// its own, one kind of credentials, a deadline on every call, and retries with exponential backoff when the cluster
/// may answer later (no answer, 429 `es_rejected_execution_exception`, 502, 503, 504).
///
/// It holds no connection of its own: requests go through the process's one `HTTPClient`, which the caller
/// injects, so a client per story run or per agent costs nothing.
///
/// ```swift
/// let cluster = ElasticClient(
///     configuration: .init(
///         nodes: ["https://es1.example.org:9200", "https://es2.example.org:9200"],
///         credentials: .apiKey(id: "VuaCfGcBCdbkQm-e5aOx", key: "ui2lp2axTNmsyakw9tvNnw"),
///         tls: .certificateAuthority(file: "/etc/quarry/http_ca.crt")
///     ),
///     httpClient: .shared
/// )
/// for try await hit in cluster.hits(index: "packetbeat-*", query: ["match_all": [:]]) { … }
/// ```
public struct ElasticClient: Sendable {
    /// Credentials: exactly one kind per cluster.
    public enum Credentials: Sendable, Equatable {
        case basic(username: String, password: String)
        /// An encoded API key (`base64(id:api_key)`, the `encoded` of a create API key response).
        case apiKey(encoded: String)
        case bearer(token: String)

        /// An API key from its id and secret.
        public static func apiKey(id: String, key: String) -> Credentials {
            .apiKey(encoded: Data("\(id):\(key)".utf8).base64EncodedString())
        }

        /// The `Authorization` header value.
        public var header: String {
            switch self {
            case .basic(let username, let password):
                "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
            case .apiKey(let encoded): "ApiKey " + encoded
            case .bearer(let token): "Bearer " + token
            }
        }
    }

    /// How the cluster's certificate is checked.
    public enum TLS: Sendable, Equatable {
        /// The system's trust store (the default).
        case systemTrustStore
        /// Certificates signed by the authorities in a PEM file (Elasticsearch 8's `http_ca.crt`).
        case certificateAuthority(file: String)
        /// The SHA-256 fingerprint (hex, colons allowed) of a certificate the cluster presents, as Elasticsearch 8
        /// prints its CA's at first start: that certificate becomes the only trust anchor. It must be self-signed or
        /// a CA of the chain.
        case fingerprint(String)
        /// No check at all: anyone between Quarry and the cluster can read and change the traffic.
        case insecure
    }

    public struct Configuration: Sendable {
        /// Node URLs (`https://host:9200`), tried in order; a node that does not answer is skipped until the others
        /// fail too.
        public var nodes: [String]
        public var credentials: Credentials?
        public var tls: TLS
        /// How long one request may take, connecting included.
        public var requestTimeout: Duration
        /// The largest response body read; a larger one fails the request.
        public var maximumResponseBytes: Int
        /// Attempts after the first for a request the cluster may answer later.
        public var retries: Int
        /// The first backoff; each retry waits twice as long, with jitter.
        public var retryBackoff: Duration

        public init(
            nodes: [String],
            credentials: Credentials? = nil,
            tls: TLS = .systemTrustStore,
            requestTimeout: Duration = .seconds(120),
            maximumResponseBytes: Int = 1 << 30,
            retries: Int = 3,
            retryBackoff: Duration = .milliseconds(500)
        ) {
            self.nodes = nodes.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            self.credentials = credentials
            self.tls = tls
            self.requestTimeout = requestTimeout
            self.maximumResponseBytes = maximumResponseBytes
            self.retries = retries
            self.retryBackoff = retryBackoff
        }
    }

    public let configuration: Configuration
    /// The `Authorization` header value sent with every request, if any.
    let authorization: String?
    let httpClient: HTTPClient
    /// Which node answered last, shared by the copies of this client, and what `GET /` said.
    let state: ClientState

    /// The first node's URL, without a trailing slash.
    public var url: String { configuration.nodes.first ?? "" }

    public init(configuration: Configuration, httpClient: HTTPClient) {
        self.init(
            configuration: configuration,
            authorization: configuration.credentials?.header,
            httpClient: httpClient
        )
    }

    /// A client sending an `Authorization` value as stored (see ``authorization(_:)``) instead of
    /// ``Configuration/credentials``.
    public init(configuration: Configuration, authorization: String?, httpClient: HTTPClient) {
        self.configuration = configuration
        self.authorization = authorization
        self.httpClient = httpClient
        state = ClientState()
    }

    /// A client of one node with an `Authorization` header as stored (see ``authorization(_:)``).
    /// - Parameters:
    ///   - url: The cluster's base URL (`https://host:9200`); a trailing slash is ignored.
    ///   - authorization: The `Authorization` header value, or nil.
    ///   - httpClient: The process's HTTP client.
    public init(url: String, authorization: String?, httpClient: HTTPClient) {
        configuration = Configuration(nodes: [url])
        self.authorization = authorization
        self.httpClient = httpClient
        state = ClientState()
    }

    /// A client on ``sharedHTTPClient`` (the CLI's one-off calls).
    public init(url: String, authorization: String?) {
        self.init(url: url, authorization: authorization, httpClient: Self.sharedHTTPClient)
    }

    /// A process-wide HTTP client for clusters, never shut down (as AsyncHTTPClient's `shared`), which does not
    /// retry a refused connection within a request: the client fails over to the next node at once, and retries
    /// with its own backoff.
    public static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// The `Authorization` header value for a stored secret: `id:key` becomes `ApiKey base64(id:key)` (as
    /// Elasticsearch's API key documentation builds it); a value that already names its scheme (`ApiKey`, `Basic`,
    /// `Bearer`) is used as it is; anything else is taken as an encoded API key.
    public static func authorization(_ secret: String) -> String {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        for scheme in ["ApiKey ", "Basic ", "Bearer "] where trimmed.hasPrefix(scheme) { return trimmed }
        if trimmed.contains(":") { return "ApiKey " + Data(trimmed.utf8).base64EncodedString() }
        return "ApiKey " + trimmed
    }

    /// The HTTP methods of Elasticsearch's REST API.
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
        case delete = "DELETE"
        case head = "HEAD"
    }

    /// Sends any request of the REST API (`GET /`, `POST /_security/api_key`, …) and returns its JSON answer.
    /// - Parameters:
    ///   - path: The path and query, starting with `/`, already percent-encoded.
    ///   - retry: Whether a request the cluster may answer later is sent again (reads and idempotent writes).
    /// - Throws: ``ElasticError``.
    public func perform(
        _ method: Method,
        _ path: String,
        body: JSON? = nil,
        retry: Bool = true
    ) async throws(ElasticError) -> JSON {
        let bytes = body.map { $0.serializedBytes() }
        return try await send(method, path, body: bytes, contentType: "application/json", retry: retry)
    }

    /// `method path` with a body that is not JSON (a story's YAML for Quarry's web API, NDJSON), sent once.
    public func perform(
        _ method: Method,
        _ path: String,
        text: String,
        contentType: String
    ) async throws(ElasticError) -> JSON {
        try await send(method, path, body: Array(text.utf8), contentType: contentType, retry: false)
    }

    /// Percent-encodes an index expression for a path.
    static func encode(_ component: String) -> String {
        component.addingPercentEncoding(
            withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))
        ) ?? component
    }

    /// Sends a request, trying the nodes in turn and retrying what may pass later.
    func send(
        _ method: Method,
        _ path: String,
        body: [UInt8]?,
        contentType: String,
        retry: Bool
    ) async throws(ElasticError) -> JSON {
        let attempts = retry ? configuration.retries + 1 : 1
        var lastError = ElasticError(.unreachable, message: "no node configured")
        for attempt in 0..<attempts {
            if attempt > 0 {
                let factor = Double(1 << min(attempt - 1, 10)) * Double.random(in: 0.75...1.25)
                try? await Task.sleep(for: configuration.retryBackoff * factor)
            }
            do {
                return try await sendOnce(method, path, body: body, contentType: contentType)
            } catch {
                lastError = error
                if !error.isRetryable { throw error }
            }
        }
        throw lastError
    }

    /// One attempt: the node that answered last first, then the others; only a node that gives no answer at all
    /// is passed over.
    private func sendOnce(
        _ method: Method,
        _ path: String,
        body: [UInt8]?,
        contentType: String
    ) async throws(ElasticError) -> JSON {
        let nodes = configuration.nodes
        guard !nodes.isEmpty else { throw ElasticError(.unreachable, message: "no node configured") }
        let first = state.preferredNode % nodes.count
        var lastError = ElasticError(.unreachable, message: "no node answered")
        for offset in 0..<nodes.count {
            let index = (first + offset) % nodes.count
            do {
                let json = try await exchange(nodes[index], method, path, body: body, contentType: contentType)
                state.preferredNode = index
                return json
            } catch {
                lastError = error
                guard error.code == .unreachable else { throw error }
            }
        }
        throw lastError
    }

    private func exchange(
        _ node: String,
        _ method: Method,
        _ path: String,
        body: [UInt8]?,
        contentType: String
    ) async throws(ElasticError) -> JSON {
        let action = "\(method.rawValue) \(node)\(Self.redactedPath(path))"
        var request = HTTPClientRequest(url: node + path)
        request.method = HTTPMethod(rawValue: method.rawValue)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let compatibility = state.compatibility {
            request.headers.add(
                name: "Accept",
                value: "application/vnd.elasticsearch+json; compatible-with=\(compatibility)"
            )
        }
        if let body {
            let type =
                state.compatibility.map {
                    contentType.replacingOccurrences(of: "application/", with: "application/vnd.elasticsearch+")
                        + "; compatible-with=\($0)"
                } ?? contentType
            request.headers.add(name: "Content-Type", value: type)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        if node.hasPrefix("https://") { request.tlsConfiguration = try await tlsConfiguration(for: node) }
        let status: HTTPResponseStatus
        let bytes: ByteBuffer
        do {
            let response = try await httpClient.execute(request, timeout: TimeAmount(configuration.requestTimeout))
            status = response.status
            bytes = try await response.body.collect(upTo: configuration.maximumResponseBytes)
        } catch is NIOTooManyBytesError {
            throw ElasticError(
                .invalidResponse,
                message: "\(action) answered more than \(configuration.maximumResponseBytes) bytes"
            )
        } catch {
            throw ElasticError(.unreachable, message: "cannot reach \(node): \(error)")
        }
        let parsed = try? JSON.parse(bytes.readableBytesView)
        guard (200..<300).contains(status.code) else {
            throw ElasticError(rejection: parsed ?? .null, status: Int(status.code), action: action)
        }
        if method == .head { return .null }
        // A 2xx that is not JSON (a proxy's login page, a wrong port) is no answer: an error, never an empty result.
        guard let parsed else {
            throw ElasticError(
                .invalidResponse,
                status: Int(status.code),
                message: "\(action) answered \(status.code) with a body that is not JSON"
            )
        }
        return parsed
    }

    /// The path without its query, which may carry a scroll id or a PIT id: enough to say what failed.
    static func redactedPath(_ path: String) -> String {
        String(path.prefix { $0 != "?" })
    }

    private func tlsConfiguration(for node: String) async throws(ElasticError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch configuration.tls {
        case .systemTrustStore:
            break
        case .certificateAuthority(let file):
            tls.trustRoots = .file(file)
        case .insecure:
            tls.certificateVerification = .none
        case .fingerprint(let fingerprint):
            let anchor = try await state.pinnedCertificate(node: node, fingerprint: fingerprint)
            tls.trustRoots = .certificates([anchor])
        }
        return tls
    }

    // MARK: Product and version

    /// What `GET /` says of the cluster.
    public struct ClusterInfo: Sendable, Equatable {
        public enum Product: String, Sendable {
            case elasticsearch
            case opensearch
        }

        public var product: Product
        /// The version's numbers (`8.17.0` → `[8, 17, 0]`).
        public var version: [Int]
        public var versionText: String
        public var clusterName: String

        /// Whether point in time with `search_after` is served: Elasticsearch 7.10+, OpenSearch 2.4+.
        public var hasPointInTime: Bool {
            switch product {
            case .elasticsearch: version.lexicographicallyPrecedes([7, 10]) == false
            case .opensearch: version.lexicographicallyPrecedes([2, 4]) == false
            }
        }
    }

    /// Reads `GET /` once, and from then on sends Elasticsearch 8 and 9 the `compatible-with` headers of their
    /// major version (OpenSearch and Elasticsearch 7 get plain JSON).
    /// - Throws: ``ElasticError`` `invalidResponse` when the answer is neither product.
    @discardableResult
    public func info() async throws(ElasticError) -> ClusterInfo {
        if let known = state.info { return known }
        let json = try await send(.get, "/", body: nil, contentType: "application/json", retry: true)
        let versionText = json["version"]?["number"]?.stringValue ?? ""
        let numbers = versionText.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        let product: ClusterInfo.Product
        if json["version"]?["distribution"]?.stringValue == "opensearch" {
            product = .opensearch
        } else if json["tagline"] != nil, !numbers.isEmpty {
            product = .elasticsearch
        } else {
            throw ElasticError(.invalidResponse, message: "\(url) is neither Elasticsearch nor OpenSearch: \(json)")
        }
        let info = ClusterInfo(
            product: product,
            version: numbers,
            versionText: versionText,
            clusterName: json["cluster_name"]?.stringValue ?? ""
        )
        state.info = info
        if product == .elasticsearch, let major = numbers.first, major >= 8 { state.compatibility = major }
        return info
    }
}

/// What the copies of one ``ElasticClient`` share: the node that answered last, the cluster's product, and the
/// certificates pinned by fingerprint.
final class ClientState: @unchecked Sendable {
    private let lock = NSLock()
    private var _preferredNode = 0
    private var _info: ElasticClient.ClusterInfo?
    private var _compatibility: Int?
    private var pinned: [String: NIOSSLCertificate] = [:]

    var preferredNode: Int {
        get { lock.withLock { _preferredNode } }
        set { lock.withLock { _preferredNode = newValue } }
    }

    var info: ElasticClient.ClusterInfo? {
        get { lock.withLock { _info } }
        set { lock.withLock { _info = newValue } }
    }

    var compatibility: Int? {
        get { lock.withLock { _compatibility } }
        set { lock.withLock { _compatibility = newValue } }
    }

    /// The certificate of `node`'s chain whose SHA-256 is `fingerprint`, fetched once with a handshake of its own.
    func pinnedCertificate(node: String, fingerprint: String) async throws(ElasticError) -> NIOSSLCertificate {
        if let known = lock.withLock({ pinned[node] }) { return known }
        let certificate = try await CertificatePin.fetch(node: node, fingerprint: fingerprint)
        lock.withLock { pinned[node] = certificate }
        return certificate
    }
}
