import Foundation
import QuarryCore
import QuarryStories

/// One file of Elastic's YAML REST tests: `requires`, `setup`, `teardown` and named tests, each a list of steps.
/// The format is described in the corpus's `es-yaml/clients-tests/README.md`.
struct YAMLTestFile {
    var requiresStack = true
    var setup: [JSON] = []
    var teardown: [JSON] = []
    var tests: [(name: String, steps: [JSON])] = []

    init(contents: String) throws {
        for document in try YAMLText.documents(contents) {
            guard case .object(let mapping) = document else { continue }
            for (name, json) in mapping {
                switch name {
                case "requires": requiresStack = json["stack"]?.boolValue ?? true
                case "setup": setup = json.arrayValue ?? []
                case "teardown": teardown = json.arrayValue ?? []
                default: tests.append((name, json.arrayValue ?? []))
                }
            }
        }
    }
}

/// API name → method and path templates, from the corpus's `es-api/ENDPOINTS.txt` and, for the APIs that file
/// does not list, Elasticsearch's REST specification.
struct EndpointTable {
    struct Endpoint {
        var path: String
        var methods: [String]
        var parameters: [String] {
            path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
        }
    }

    var endpoints: [String: [Endpoint]] = [:]

    static let supplement: [String: [Endpoint]] = [
        "ping": [Endpoint(path: "/", methods: ["HEAD"])],
        "indices.put_alias": [Endpoint(path: "/{index}/_alias/{name}", methods: ["PUT", "POST"])],
        "indices.get_alias": [
            Endpoint(path: "/_alias", methods: ["GET"]), Endpoint(path: "/_alias/{name}", methods: ["GET"]),
            Endpoint(path: "/{index}/_alias/{name}", methods: ["GET"]),
            Endpoint(path: "/{index}/_alias", methods: ["GET"]),
        ],
        "indices.exists_alias": [
            Endpoint(path: "/_alias/{name}", methods: ["HEAD"]),
            Endpoint(path: "/{index}/_alias/{name}", methods: ["HEAD"]),
        ],
        "indices.update_aliases": [Endpoint(path: "/_aliases", methods: ["POST"])],
        "indices.delete_alias": [Endpoint(path: "/{index}/_alias/{name}", methods: ["DELETE"])],
        "indices.get_index_template": [
            Endpoint(path: "/_index_template", methods: ["GET"]),
            Endpoint(path: "/_index_template/{name}", methods: ["GET"]),
        ],
        "indices.exists_index_template": [Endpoint(path: "/_index_template/{name}", methods: ["HEAD"])],
        "indices.delete_index_template": [Endpoint(path: "/_index_template/{name}", methods: ["DELETE"])],
        // Security APIs the corpus's endpoint list leaves out, with the paths of Elasticsearch's REST specification.
        "security.put_role": [Endpoint(path: "/_security/role/{name}", methods: ["PUT", "POST"])],
        "security.delete_role": [Endpoint(path: "/_security/role/{name}", methods: ["DELETE"])],
        "security.put_user": [Endpoint(path: "/_security/user/{username}", methods: ["PUT", "POST"])],
        "security.delete_user": [Endpoint(path: "/_security/user/{username}", methods: ["DELETE"])],
        "security.update_api_key": [Endpoint(path: "/_security/api_key/{id}", methods: ["PUT"])],
        "security.bulk_update_api_keys": [Endpoint(path: "/_security/api_key/_bulk_update", methods: ["POST"])],
        "security.grant_api_key": [Endpoint(path: "/_security/api_key/grant", methods: ["POST"])],
        "security.clear_api_key_cache": [Endpoint(path: "/_security/api_key/{ids}/_clear_cache", methods: ["POST"])],
        // Search APIs the list leaves out, with the specification's paths too.
        "field_caps": [
            Endpoint(path: "/_field_caps", methods: ["GET", "POST"]),
            Endpoint(path: "/{index}/_field_caps", methods: ["GET", "POST"]),
        ],
        "delete_by_query_rethrottle": [
            Endpoint(path: "/_delete_by_query/{task_id}/_rethrottle", methods: ["POST"])
        ],
    ]

    init(contents: String) {
        endpoints = Self.supplement
        var current: String?
        var pendingPath: String?
        for line in contents.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("== ") {
                current = String(text.dropFirst(3).split(separator: " ").first ?? "")
                endpoints[current!] = []
            } else if text.hasPrefix("path:") {
                pendingPath = text.dropFirst(5).trimmingCharacters(in: CharacterSet(charactersIn: " '"))
            } else if text.hasPrefix("methods:"), let current, let path = pendingPath {
                let methods = text.dropFirst(8).components(separatedBy: CharacterSet(charactersIn: "[]', "))
                    .filter { !$0.isEmpty }
                endpoints[current, default: []].append(Endpoint(path: path, methods: methods))
                pendingPath = nil
            }
        }
    }

    /// The method and path for calling `api` with `parameters`: the endpoint whose path parameters are all given,
    /// preferring the one that uses the most of them.
    func resolve(
        _ api: String,
        parameters: JSONObject,
        hasBody: Bool
    ) -> (method: String, path: String, used: Set<String>)? {
        guard let candidates = endpoints[api] else { return nil }
        let usable = candidates.filter { $0.parameters.allSatisfy { parameters[$0] != nil } }
        guard let endpoint = usable.max(by: { $0.parameters.count < $1.parameters.count }) else { return nil }
        var path = endpoint.path
        for name in endpoint.parameters {
            let value = parameters[name]!
            let text: String
            switch value {
            case .array(let items): text = items.map { $0.stringValue ?? $0.serialized() }.joined(separator: ",")
            case .string(let s): text = s
            default: text = value.serialized()
            }
            path = path.replacingOccurrences(
                of: "{\(name)}",
                with: text.addingPercentEncoding(
                    withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))
                ) ?? text
            )
        }
        let methods = endpoint.methods
        let method: String
        if hasBody, let withBody = methods.first(where: { $0 == "PUT" || $0 == "POST" }) {
            method = api == "index" && parameters["id"] == nil ? "POST" : withBody
        } else if methods.contains("GET") {
            method = "GET"
        } else {
            method = methods.first ?? "GET"
        }
        return (method, path, Set(endpoint.parameters))
    }
}
