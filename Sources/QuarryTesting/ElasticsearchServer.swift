import Foundation
import HTTPTypes
public import HummingbirdTesting
import Logging
import NIOCore
public import QuarryElasticsearchAPI
public import QuarrySearch
import QuarryServer

/// The `elastic` superuser of the servers tests start.
public enum TestElasticUser {
    public static let password = "quarry-test-password"
    /// `Authorization: Basic …` for `elastic`.
    public static let authorization = basic("elastic", password)

    /// A `Basic` header value.
    public static func basic(_ username: String, _ password: String) -> String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    /// Security as the servers of tests run it: bcrypt at its lowest cost, so that tests creating users stay fast.
    public static let configuration = ElasticsearchSecurity.Configuration(passwordHashCost: 4)
}

/// Runs Quarry's Elasticsearch API, with security on, on `127.0.0.1:0` over a store in a temporary directory, and
/// calls `body` with a client connected to it over a real socket. The client sends `credentials` (the `elastic`
/// superuser's by default; `nil` sends none) on every request that does not carry its own `Authorization`.
///
/// ```swift
/// try await withElasticsearchServer { client, store in
///     try await client.execute(uri: "/", method: .get) { response in #expect(response.status == .ok) }
/// }
/// ```
public func withElasticsearchServer<T: Sendable>(
    credentials: String? = TestElasticUser.authorization,
    configuration: ElasticsearchSecurity.Configuration = TestElasticUser.configuration,
    _ body: @Sendable (any TestClientProtocol, EmbeddedStore) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { (url: URL) async throws -> T in
        let store = try EmbeddedStore(configuration: .init(dataDirectory: url))
        defer { try? store.close() }
        var logger = Logger(label: "quarry-test")
        logger.logLevel = .warning
        let security = try ElasticsearchSecurity(directory: url, configuration: configuration, logger: logger)
        _ = try security.bootstrapElasticUser(password: TestElasticUser.password)
        let application = try buildElasticsearchApplication(
            store: store,
            security: security,
            configuration: .init(host: "127.0.0.1", port: 0),
            logger: logger
        )
        return try await application.test(.live) { client in
            try await body(CredentialedClient(client: client, authorization: credentials), store)
        }
    }
}

/// A test client that adds an `Authorization` header to requests without one.
struct CredentialedClient: TestClientProtocol {
    let client: any TestClientProtocol
    let authorization: String?

    func executeRequest(
        uri: String,
        method: HTTPRequest.Method,
        headers: HTTPFields,
        body: ByteBuffer?
    ) async throws -> TestResponse {
        var headers = headers
        if let authorization, headers[.authorization] == nil { headers[.authorization] = authorization }
        return try await client.executeRequest(uri: uri, method: method, headers: headers, body: body)
    }

    var port: Int? { client.port }
}
