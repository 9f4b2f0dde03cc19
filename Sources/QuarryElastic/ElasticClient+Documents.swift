import Foundation
public import QuarryCore

/// Search, count, multi-search and bulk.
extension ElasticClient {
    /// Runs `POST /<index>/_search` with `body`.
    ///
    /// - Parameters:
    ///   - index: An index expression (`packetbeat-*`, `a,b`); it is percent-encoded into the path.
    ///   - body: The search body (Query DSL).
    /// - Returns: The cluster's response.
    /// - Throws: ``ElasticError``: `unreachable` when no node answered, `rejected` with the cluster's status and
    ///   reason, `invalidResponse` when a 200 is not JSON or too large.
    public func search(index: String, body: JSON) async throws(ElasticError) -> JSON {
        try await perform(.post, "/\(Self.encode(index))/_search", body: body)
    }

    /// `POST /<index>/_count`: how many documents match `query` (all when nil).
    public func count(index: String, query: JSON? = nil) async throws(ElasticError) -> Int {
        let body: JSON? = query.map { ["query": $0] }
        let response = try await perform(.post, "/\(Self.encode(index))/_count", body: body)
        guard let count = response["count"]?.intValue else {
            throw ElasticError(.invalidResponse, message: "count on \(index) answered without a count")
        }
        return Int(count)
    }

    /// `POST /_msearch`: several searches in one request; each answers or fails on its own.
    public func multiSearch(
        _ searches: [(index: String, body: JSON)]
    ) async throws(ElasticError) -> [Result<
        JSON, ElasticError
    >] {
        var lines: [UInt8] = []
        for search in searches {
            JSON.object(["index": .string(search.index)]).write(to: &lines)
            lines.append(0x0A)
            search.body.write(to: &lines)
            lines.append(0x0A)
        }
        let response = try await send(.post, "/_msearch", body: lines, contentType: "application/x-ndjson", retry: true)
        let answers = response["responses"]?.arrayValue ?? []
        guard answers.count == searches.count else {
            throw ElasticError(
                .invalidResponse,
                message: "msearch answered \(answers.count) of \(searches.count) searches"
            )
        }
        return answers.map { answer in
            if answer["error"] != nil {
                let status = Int(answer["status"]?.intValue ?? 500)
                return .failure(ElasticError(rejection: answer, status: status, action: "msearch item"))
            }
            return .success(answer)
        }
    }

    // MARK: Bulk

    /// One operation of a bulk request.
    public struct BulkOperation: Sendable {
        public enum Action: String, Sendable {
            case index, create, update, delete
        }

        public var action: Action
        public var index: String
        public var id: String?
        /// The document (`index`, `create`), or the update body (`{"doc": …}`); nil for `delete`.
        public var document: JSON?

        public init(_ action: Action, index: String, id: String? = nil, document: JSON? = nil) {
            self.action = action
            self.index = index
            self.id = id
            self.document = document
        }
    }

    /// An operation that did not succeed, by its position in the operations given.
    public struct BulkFailure: Sendable {
        public var position: Int
        public var id: String?
        public var status: Int
        public var type: String
        public var reason: String
    }

    /// What a bulk load did.
    public struct BulkSummary: Sendable {
        public var succeeded = 0
        public var failed: [BulkFailure] = []
        /// Items sent again after a 429 (`es_rejected_execution_exception`) of theirs.
        public var retriedItems = 0
        public var requests = 0
    }

    /// Sends one `_bulk` request as it is (NDJSON action and source lines, as a bulk file holds them) and returns
    /// the cluster's answer; `index` is the default index of action lines that name none. Not retried: the caller
    /// knows which lines the request held.
    public func bulk(ndjson body: [UInt8], index: String? = nil) async throws(ElasticError) -> JSON {
        let path = (index.map { "/" + Self.encode($0) } ?? "") + "/_bulk"
        return try await send(.post, path, body: body, contentType: "application/x-ndjson", retry: false)
    }

    /// Writes `operations` with `_bulk`, in requests of at most `batchDocuments` operations and about `batchBytes`
    /// bytes. Items the cluster rejects for load (429) are sent again, with backoff, up to
    /// ``Configuration/retries`` times; other failures are reported, never dropped.
    ///
    /// A retry never duplicates a document: `index` and `create` operations without an id get one here (random,
    /// 20 URL-safe characters, as Elasticsearch makes them), so a request sent again after no answer writes the same
    /// documents again rather than new copies.
    public func bulk(
        _ operations: [BulkOperation],
        batchDocuments: Int = 1_000,
        batchBytes: Int = 5 << 20
    ) async throws(ElasticError) -> BulkSummary {
        var lines: [[UInt8]] = []
        var ids: [String?] = []
        for operation in operations {
            var id = operation.id
            if id == nil, operation.action == .index || operation.action == .create { id = Self.documentID() }
            ids.append(id)
            var meta: JSONObject = ["_index": .string(operation.index)]
            if let id { meta["_id"] = .string(id) }
            var bytes: [UInt8] = []
            JSON.object([operation.action.rawValue: .object(meta)]).write(to: &bytes)
            bytes.append(0x0A)
            if let document = operation.document, operation.action != .delete {
                document.write(to: &bytes)
                bytes.append(0x0A)
            }
            lines.append(bytes)
        }
        var summary = BulkSummary()
        var pending = Array(operations.indices)
        var round = 0
        while !pending.isEmpty {
            if round > 0 {
                let factor = Double(1 << min(round - 1, 10)) * Double.random(in: 0.75...1.25)
                try? await Task.sleep(for: configuration.retryBackoff * factor)
            }
            var again: [Int] = []
            var start = 0
            while start < pending.count {
                var end = start
                var size = 0
                while end < pending.count, end - start < batchDocuments,
                    end == start || size + lines[pending[end]].count <= batchBytes
                {
                    size += lines[pending[end]].count
                    end += 1
                }
                let batch = Array(pending[start..<end])
                start = end
                let body = batch.flatMap { lines[$0] }
                let response = try await send(
                    .post,
                    "/_bulk",
                    body: body,
                    contentType: "application/x-ndjson",
                    retry: true
                )
                summary.requests += 1
                let items = response["items"]?.arrayValue ?? []
                guard items.count == batch.count else {
                    throw ElasticError(
                        .invalidResponse,
                        message: "bulk answered \(items.count) items for \(batch.count)"
                    )
                }
                for (position, item) in zip(batch, items) {
                    let result = item.objectValue?.first?.value ?? .null
                    let status = Int(result["status"]?.intValue ?? 0)
                    if (200..<300).contains(status) {
                        summary.succeeded += 1
                    } else if status == 429, round < configuration.retries {
                        again.append(position)
                    } else {
                        summary.failed.append(
                            BulkFailure(
                                position: position,
                                id: ids[position],
                                status: status,
                                type: result["error"]?["type"]?.stringValue ?? "",
                                reason: result["error"]?["reason"]?.stringValue ?? ""
                            )
                        )
                    }
                }
            }
            summary.retriedItems += again.count
            pending = again
            round += 1
        }
        summary.failed.sort { $0.position < $1.position }
        return summary
    }

    /// A random document id: 15 bytes in URL-safe base64.
    static func documentID() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<15).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
    }

    // MARK: Security

    /// `GET /_security/_authenticate`: who the credentials are.
    public func authenticate() async throws(ElasticError) -> JSON {
        try await perform(.get, "/_security/_authenticate")
    }

    /// `POST /_security/api_key`. The response holds `id`, `api_key` and `encoded`.
    /// - Parameters:
    ///   - expiration: A time value (`14d`), or nil for a key that does not expire.
    ///   - roleDescriptors: `role_descriptors`, or nil for the caller's privileges.
    public func createAPIKey(
        name: String,
        expiration: String? = nil,
        roleDescriptors: JSON? = nil,
        metadata: JSON? = nil
    ) async throws(ElasticError) -> JSON {
        var body: JSONObject = ["name": .string(name)]
        if let expiration { body["expiration"] = .string(expiration) }
        if let roleDescriptors { body["role_descriptors"] = roleDescriptors }
        if let metadata { body["metadata"] = metadata }
        return try await perform(.post, "/_security/api_key", body: .object(body), retry: false)
    }

    /// `GET /_security/api_key`: the keys the credentials may see.
    public func apiKeys(name: String? = nil) async throws(ElasticError) -> [JSON] {
        let query = name.map { "?name=" + ($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0) }
        return try await perform(.get, "/_security/api_key" + (query ?? ""))["api_keys"]?.arrayValue ?? []
    }

    /// `DELETE /_security/api_key`; returns the ids invalidated now.
    public func invalidateAPIKeys(ids: [String]) async throws(ElasticError) -> [String] {
        let response = try await perform(.delete, "/_security/api_key", body: ["ids": .array(ids.map { .string($0) })])
        return response["invalidated_api_keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}
