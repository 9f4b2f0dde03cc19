public import QuarryAgents
public import QuarryCore
public import QuarryElasticsearchAPI
import QuarryStories

/// The embedded store as a cluster for `elasticsearch` agents: the same `_search` endpoint the REST API serves,
/// called in process.
public struct EmbeddedCluster: SearchCluster {
    let api: ElasticsearchAPI

    public init(api: ElasticsearchAPI) {
        self.api = api
    }

    public func search(index: String, body: JSON) async throws -> JSON {
        let response = api.handle(ESRequest(method: .post, path: [index, "_search"], body: body.serializedBytes()))
        let json = response.json ?? .null
        guard response.status == 200 else {
            let reason = json["error"]?["reason"]?.stringValue ?? "status \(response.status)"
            throw AgentError.failed("search on \(index) failed: \(response.status) \(reason)")
        }
        return json
    }
}
