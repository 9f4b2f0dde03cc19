import Foundation
public import HummingbirdTesting
import Logging
public import QuarrySearch
import QuarryServer

/// Runs Quarry's Elasticsearch API on `127.0.0.1:0` over a store in a temporary directory, and calls `body` with
/// a client connected to it over a real socket.
///
/// ```swift
/// try await withElasticsearchServer { client, store in
///     try await client.execute(uri: "/", method: .get) { response in #expect(response.status == .ok) }
/// }
/// ```
public func withElasticsearchServer<T: Sendable>(
    _ body: @Sendable (any TestClientProtocol, EmbeddedStore) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { (url: URL) async throws -> T in
        let store = try EmbeddedStore(configuration: .init(dataDirectory: url))
        defer { try? store.close() }
        var logger = Logger(label: "quarry-test")
        logger.logLevel = .warning
        let application = buildElasticsearchApplication(
            store: store,
            configuration: .init(host: "127.0.0.1", port: 0),
            logger: logger
        )
        return try await application.test(.live) { client in try await body(client, store) }
    }
}
