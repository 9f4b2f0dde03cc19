public import QuarryAgents
public import QuarryCore
public import QuarryElasticsearchAPI
import QuarryStories

/// The embedded store as a cluster for `elasticsearch` agents: the same `_search` endpoint the REST API serves,
/// called in process. The search is blocking SQLite work, so it runs where the HTTP path's requests run
/// (``StoreRequests``), never on Swift's cooperative pool where it would hold up every other task.
public struct EmbeddedCluster: SearchCluster {
    let api: ElasticsearchAPI

    public init(api: ElasticsearchAPI) {
        self.api = api
    }

    public func search(index: String, body: JSON) async throws -> JSON {
        let request = ESRequest(method: .post, path: [index, "_search"], body: body.serializedBytes())
        let response = try await StoreRequests.handle(request, with: api)
        let json = response.json ?? .null
        guard response.status == 200 else {
            let reason = ElasticsearchErrorBody.reason(json) ?? "status \(response.status)"
            throw AgentError.failed("search on \(index) failed: \(response.status) \(reason)")
        }
        return json
    }
}
