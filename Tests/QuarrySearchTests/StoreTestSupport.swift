import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting

/// A store in a temporary directory for one test.
func withStore<T>(segmentDocuments: Int = 65_536, _ body: (EmbeddedStore) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { url in
        let store = try EmbeddedStore(configuration: .init(dataDirectory: url, segmentDocuments: segmentDocuments))
        defer { try? store.close() }
        return try await body(store)
    }
}

extension EmbeddedStore {
    /// Indexes documents (with ids when given) and fails on any item error.
    func index(_ index: String, _ documents: [JSON], ids: [String]? = nil) throws {
        let items = documents.enumerated().map { offset, document in
            BulkItem(
                index: index,
                operation: .index(
                    IndexRequest(id: ids?[offset], source: document.serializedBytes(), document: document)
                )
            )
        }
        for result in bulk(items) where result.error != nil {
            throw result.error!
        }
    }

    /// Searches with a request body given as JSON, and answers Elasticsearch's response body.
    func search(_ expression: String, _ body: JSON) throws -> JSON {
        try search(expression, SearchRequest(body: body)).responseBody()
    }

    /// The `_id`s of the hits of a search, in order.
    func ids(_ expression: String, _ body: JSON) throws -> [String] {
        let response = try search(expression, body)
        return response["hits"]?["hits"]?.arrayValue?.compactMap { $0["_id"]?.stringValue } ?? []
    }
}
