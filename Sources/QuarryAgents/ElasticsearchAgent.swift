import Foundation
import QuarryCore
import QuarryElastic
public import QuarryStories

/// `elasticsearch` — a search against a cluster: the embedded store by default, or a remote Elasticsearch or
/// OpenSearch named by `cluster`: a URL, or a global resource holding the URL or `{"url": …}` / `{"urls": [...]}`
/// (nodes tried in turn), `"tls"` (`{"ca_file": PATH}`, `{"fingerprint": SHA256}` or `{"insecure": true}`) and
/// `"credential"` (the name of the credential to use, which the story declares).
///
/// Options: `index` (default `*`), `query` (a Query DSL body, `| as_object` for structured parts), `kql` (a Kibana
/// Query Language filter that becomes the body's `query`, beside `query`'s size, sort or aggregations), `paginate`
/// (`true` for every hit, or a number: at most that many; pages of `page_size` with `search_after`, so there is
/// no 10,000-hit cap), `credential` (the name of a credential holding an API key as `id:key`, an encoded API key,
/// or a whole `Authorization` value such as `Basic …`). Emits `{hits, total, aggregations, took}`, `hits` being
/// Elasticsearch's hit objects.
public struct ElasticsearchAgent: StoryAgent {
    public static let type = "elasticsearch"
    public static let summary = "Searches the embedded store or a remote Elasticsearch/OpenSearch, with pagination."
    public static let destinationOptions = ["cluster", "credential"]
    public static let options: [OptionSpec] = [
        OptionSpec("index", .string, "Index pattern (default *)."),
        OptionSpec("query", .object, "The search body (Query DSL); with kql, the rest of the body."),
        OptionSpec("kql", .string, "A Kibana Query Language filter: the body's query (KQL → Query DSL)."),
        OptionSpec("paginate", .any, "true: all hits; a number: at most that many (search_after pages)."),
        OptionSpec("page_size", .integer, "Hits per page when paginating (default 1000)."),
        OptionSpec("cluster", .string, "A cluster URL, or a global resource naming one; empty: the embedded store."),
        OptionSpec(
            "credential",
            .string,
            "The credential to authenticate with (API key id:key, encoded key, or an Authorization value)."
        ),
    ]

    public init(definition: AgentDefinition) throws(StoryProblem) {}

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        let cluster = try Self.cluster(input, context: context)
        let index = input.string("index") ?? "*"
        var body = input.options["query"] ?? (input.options["kql"] != nil ? .object([:]) : .null)
        guard body.objectValue != nil else {
            throw AgentError.failed(
                input.options["query"] == nil
                    ? "query or kql is needed: what to search for"
                    : "query must render to a JSON object (use | as_object for structured values)"
            )
        }
        if let kql = input.string("kql") {
            guard body["query"] == nil else {
                throw AgentError.failed("kql and a query in query: give one (kql becomes the body's query)")
            }
            do {
                body["query"] = try KQL.query(kql)
            } catch {
                throw AgentError.failed("kql: \(error)")
            }
        }
        var limit: Int?
        switch input.options["paginate"] {
        case .bool(true)?: limit = Int.max
        case .int(let number)?: limit = Int(number)
        case .string(let text)?: limit = text == "true" ? Int.max : Int(text)
        default: limit = nil
        }
        guard let limit else {
            let response = try await cluster.search(index: index, body: body)
            return AgentOutput(events: [Self.event(response, hits: response["hits"]?["hits"]?.arrayValue ?? [])])
        }
        let pageSize = max(1, min(10_000, Int(input.number("page_size") ?? 1_000)))
        var sort = body["sort"]?.arrayValue ?? (body["sort"].map { [$0] } ?? [])
        if !sort.contains(where: { $0.stringValue == "_doc" || $0["_doc"] != nil }) { sort.append("_doc") }
        body["sort"] = .array(sort)
        body["from"] = nil
        var hits: [JSON] = []
        var first: JSON?
        while hits.count < limit {
            body["size"] = .int(Int64(min(pageSize, limit - hits.count)))
            let response = try await cluster.search(index: index, body: body)
            if first == nil { first = response }
            let page = response["hits"]?["hits"]?.arrayValue ?? []
            hits += page
            guard page.count == pageSize, let last = page.last?["sort"] else { break }
            body["search_after"] = last
        }
        return AgentOutput(events: [Self.event(first ?? .object([:]), hits: hits)])
    }

    static func event(_ response: JSON, hits: [JSON]) -> JSON {
        var event: JSONObject = [
            "hits": .array(hits),
            "total": response["hits"]?["total"]?["value"] ?? response["hits"]?["total"] ?? .int(Int64(hits.count)),
            "took": response["took"] ?? .null,
        ]
        if let aggregations = response["aggregations"] { event["aggregations"] = aggregations }
        return .object(event)
    }

    static func cluster(_ input: AgentInput, context: AgentContext) throws -> any SearchCluster {
        var authorization: String?
        if let name = input.string("credential"), !name.isEmpty {
            guard let secret = try context.credential(name) else {
                throw AgentError.failed("no credential named '\(name)'")
            }
            authorization = ElasticClient.authorization(secret)
        }
        guard let target = input.string("cluster"), !target.isEmpty else {
            guard let cluster = try context.builtIn.defaultCluster else {
                throw AgentError.failed("no cluster: name one with the cluster option, or run with the embedded store")
            }
            return cluster
        }
        var urls = [target]
        var tls = ElasticClient.TLS.systemTrustStore
        if !target.contains("://") {
            guard let resource = try context.resource(target) else {
                throw AgentError.failed("no resource named '\(target)'")
            }
            urls =
                resource["urls"]?.arrayValue?.compactMap(\.stringValue)
                ?? [resource["url"]?.stringValue ?? resource.stringValue ?? ""]
            tls = try Self.tls(resource["tls"], cluster: target)
            if authorization == nil, let name = resource["credential"]?.stringValue {
                guard let secret = try context.credential(name) else {
                    throw AgentError.failed("no credential named '\(name)' (named by the cluster resource '\(target)')")
                }
                authorization = ElasticClient.authorization(secret)
            }
        }
        for url in urls {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw AgentError.failed("cluster '\(target)' is not an http(s) URL")
            }
            try context.checkDestination(URLComponents(string: url)?.host ?? url)
        }
        return RemoteCluster(
            client: ElasticClient(
                configuration: .init(nodes: urls, tls: tls, retries: 1),
                authorization: authorization,
                httpClient: try context.builtIn.httpClient
            )
        )
    }

    /// The `tls` of a cluster resource.
    static func tls(_ json: JSON?, cluster: String) throws -> ElasticClient.TLS {
        guard let json else { return .systemTrustStore }
        if let file = json["ca_file"]?.stringValue { return .certificateAuthority(file: file) }
        if let fingerprint = json["fingerprint"]?.stringValue { return .fingerprint(fingerprint) }
        if json["insecure"]?.boolValue == true { return .insecure }
        throw AgentError.failed(
            "the tls of cluster '\(cluster)' must hold ca_file, fingerprint or insecure: true; found \(json.serialized())"
        )
    }
}

/// A remote cluster as the agent sees it: ``QuarryElastic/ElasticClient``'s failures become agent errors, retried
/// with backoff when the cluster may answer later (no answer, 429, 5xx).
struct RemoteCluster: SearchCluster {
    let client: ElasticClient

    func search(index: String, body: JSON) async throws -> JSON {
        do {
            return try await client.search(index: index, body: body)
        } catch {
            throw error.isRetryable ? AgentError.retryable(error.message) : AgentError.failed(error.message)
        }
    }
}
