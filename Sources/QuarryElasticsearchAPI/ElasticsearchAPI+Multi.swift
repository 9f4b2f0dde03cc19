import QuarryCore
import QuarrySearch

/// `_mget` and `_msearch`: several gets or searches in one request, each answered (or failed) on its own.
extension ElasticsearchAPI {
    func multiGet(_ request: ESRequest, _ defaultIndex: String?) throws(StoreError) -> ESResponse {
        let body = try request.requiredObject()
        var specifications: [JSONObject] = []
        if let docs = body["docs"]?.arrayValue {
            for doc in docs {
                guard let object = doc.objectValue else {
                    throw .parsing("[mget] docs array element should include an object")
                }
                specifications.append(object)
            }
        } else if let ids = body["ids"]?.arrayValue {
            specifications = ids.map { ["_id": $0] }
        } else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: no documents to get;",
                status: 400
            )
        }
        var responses: [JSON] = []
        let table = request.authentication.indexTable(for: [Action.multiGet], store: store)
        for specification in specifications {
            let id = specification["_id"]?.stringValue ?? specification["_id"]?.intValue.map { String($0) }
            guard let index = specification["_index"]?.stringValue ?? defaultIndex, let id else {
                throw StoreError(
                    type: "action_request_validation_exception",
                    reason: "Validation Failed: 1: index is missing for doc 0;2: id is missing for doc 0;",
                    status: 400
                )
            }
            var get = ESRequest(method: .get, path: [index, "_doc", id])
            for key in ["_source", "_source_includes", "_source_excludes"] {
                if let value = request.parameters[key] { get.parameters[key] = value }
            }
            if let source = specification["_source"] {
                switch source {
                case .bool(let flag): get.parameters["_source"] = flag ? "true" : "false"
                case .string(let field): get.parameters["_source_includes"] = field
                case .array(let fields):
                    get.parameters["_source_includes"] = fields.compactMap(\.stringValue).joined(separator: ",")
                default: break
                }
            }
            do {
                try request.authentication.checkNamed(Action.multiGet, index, table: table)
                responses.append(try getDocument(get, index, id, sourceOnly: false).json ?? .null)
            } catch {
                responses.append(["_index": .string(index), "_id": .string(id), "error": error.json])
            }
        }
        return ESResponse(json: ["docs": .array(responses)])
    }

    func multiSearch(_ request: ESRequest, _ defaultIndex: String?) throws(StoreError) -> ESResponse {
        let started = ContinuousClock.now
        let lines = request.body.split(separator: 0x0A, omittingEmptySubsequences: false).filter {
            $0.contains { $0 > 0x20 }
        }
        guard !lines.isEmpty else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: no requests added;",
                status: 400
            )
        }
        guard lines.count % 2 == 0 else {
            throw .illegalArgument("msearch request must be terminated by a body line after the header line")
        }
        var responses: [JSON] = []
        for pair in stride(from: 0, to: lines.count, by: 2) {
            let header: JSON
            do {
                header = try JSON.parse(lines[pair])
            } catch {
                throw .xContentParse(error.description)
            }
            guard case .object(let headerObject) = header else {
                throw .parsing("msearch header line must be an object")
            }
            var index = defaultIndex
            var search = ESRequest(method: .post, path: [], body: Array(lines[pair + 1]))
            for (key, value) in headerObject {
                let text =
                    value.arrayValue?.compactMap(\.stringValue).joined(separator: ",")
                    ?? value.stringValue ?? value.serialized()
                switch key {
                case "index": index = text
                case "search_type", "preference", "routing", "request_cache", "ccs_minimize_roundtrips",
                    "allow_partial_search_results":
                    continue
                default: search.parameters[key] = text
                }
            }
            for key in ["rest_total_hits_as_int", "typed_keys"] {
                if let value = request.parameters[key] { search.parameters[key] = value }
            }
            do {
                if let narrowed = try request.authentication.authorizeIndices(
                    index,
                    action: Action.search,
                    store: store
                ) {
                    index = narrowed
                }
                search.path = [index ?? "_all", "_search"]
                guard case .object(var object) = try self.search(search, index).json ?? .null else { continue }
                object["status"] = 200
                responses.append(.object(object))
            } catch {
                var object = error.responseBody.objectValue ?? [:]
                object["status"] = .int(Int64(error.status))
                responses.append(.object(object))
            }
        }
        let took = started.duration(to: .now)
        let milliseconds = took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000
        return ESResponse(json: ["took": .int(milliseconds), "responses": .array(responses)])
    }
}
