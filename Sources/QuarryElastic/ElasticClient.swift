public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
public import QuarryCore

/// A client for a remote Elasticsearch or OpenSearch cluster over HTTP(S), authenticated with an API key, Basic
/// or Bearer.
///
/// It holds no connection of its own: requests go through the process's one `HTTPClient`, which the caller
/// injects, so a client per story run or per agent costs nothing.
///
/// ```swift
/// let cluster = ElasticClient(
///     url: "https://es.example.org:9200",
///     authorization: ElasticClient.authorization("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"),
///     httpClient: .shared
/// )
/// let response = try await cluster.search(index: "packetbeat-*", body: ["query": ["match_all": [:]]])
/// ```
public struct ElasticClient: Sendable {
    /// The cluster's base URL, without a trailing slash.
    public let url: String
    /// The `Authorization` header value sent with every request, if any.
    let authorization: String?
    let httpClient: HTTPClient
    /// How long one request may take, connecting included.
    public var requestTimeout: TimeAmount = .seconds(120)
    /// The largest response body read; a larger one fails the request.
    public var maximumResponseBytes = 1 << 30

    /// - Parameters:
    ///   - url: The cluster's base URL (`https://host:9200`); a trailing slash is ignored.
    ///   - authorization: The `Authorization` header value (see ``authorization(_:)``), or nil.
    ///   - httpClient: The process's HTTP client.
    public init(url: String, authorization: String?, httpClient: HTTPClient) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.authorization = authorization
        self.httpClient = httpClient
    }

    /// A client on AsyncHTTPClient's process-wide shared client (the CLI's one-off calls).
    public init(url: String, authorization: String?) {
        self.init(url: url, authorization: authorization, httpClient: .shared)
    }

    /// The `Authorization` header value for a stored secret: `id:key` becomes `ApiKey base64(id:key)` (as
    /// Elasticsearch's API key documentation builds it); a value that already names its scheme (`ApiKey`, `Basic`,
    /// `Bearer`) is used as it is; anything else is taken as an encoded API key.
    public static func authorization(_ secret: String) -> String {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        for scheme in ["ApiKey ", "Basic ", "Bearer "] where trimmed.hasPrefix(scheme) { return trimmed }
        if trimmed.contains(":") { return "ApiKey " + Data(trimmed.utf8).base64EncodedString() }
        return "ApiKey " + trimmed
    }

    /// Runs `POST /<index>/_search` with `body`.
    ///
    /// - Parameters:
    ///   - index: An index expression (`packetbeat-*`, `a,b`); it is percent-encoded into the path.
    ///   - body: The search body (Query DSL).
    /// - Returns: The cluster's response.
    /// - Throws: ``ElasticError``: `unreachable` when no response came, `rejected` with the cluster's status and
    ///   reason, `invalidResponse` when a 200 is not JSON or too large.
    public func search(index: String, body: JSON) async throws(ElasticError) -> JSON {
        let encodedIndex =
            index.addingPercentEncoding(
                withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))
            ) ?? index
        return try await send(.POST, path: "/\(encodedIndex)/_search", body: body, action: "search on \(url)/\(index)")
    }

    /// Sends any request of the REST API (`GET /`, `POST /_security/api_key`, …) and returns its JSON answer.
    /// - Parameters:
    ///   - path: The path and query, starting with `/`, already percent-encoded.
    /// - Throws: ``ElasticError`` as ``search(index:body:)``.
    public func perform(_ method: Method, _ path: String, body: JSON? = nil) async throws(ElasticError) -> JSON {
        try await send(
            HTTPMethod(rawValue: method.rawValue),
            path: path,
            body: body,
            action: "\(method.rawValue) \(url)\(path)"
        )
    }

    /// The HTTP methods of Elasticsearch's REST API.
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
        case delete = "DELETE"
        case head = "HEAD"
    }

    private func send(
        _ method: HTTPMethod,
        path: String,
        body: JSON?,
        action: String
    ) async throws(ElasticError)
        -> JSON
    {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serializedBytes()))
        }
        let status: HTTPResponseStatus
        let bytes: ByteBuffer
        do {
            let response = try await httpClient.execute(request, timeout: requestTimeout)
            status = response.status
            bytes = try await response.body.collect(upTo: maximumResponseBytes)
        } catch is NIOTooManyBytesError {
            throw ElasticError(.invalidResponse, message: "\(action) answered more than \(maximumResponseBytes) bytes")
        } catch {
            throw ElasticError(.unreachable, message: "cannot reach \(url): \(error)")
        }
        let parsed = try? JSON.parse(bytes.readableBytesView)
        let json = parsed ?? .null
        guard status == .ok else {
            let reason = json["error"]?["reason"]?.stringValue ?? json["error"]?.stringValue ?? "HTTP \(status.code)"
            throw ElasticError(
                .rejected,
                status: Int(status.code),
                message: "\(action) failed: \(status.code) \(reason)"
            )
        }
        // A 200 that is not JSON (a proxy's login page, a wrong port) is no answer to the search: an error, never an
        // empty result.
        guard let parsed else {
            throw ElasticError(
                .invalidResponse,
                status: 200,
                message: "\(action) answered 200 with a body that is not JSON"
            )
        }
        return parsed
    }
}
