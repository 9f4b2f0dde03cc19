import Foundation
import QuarryCore
import QuarrySearch

extension ElasticsearchAPI {
    /// What `_delete_by_query` and `_update_by_query` do to each matching document.
    enum ByQueryAction {
        case delete
        /// Without a script: the document is written again as it is (its version and sequence number move, and
        /// mapping changes since it was indexed apply), as Elasticsearch does.
        case update
    }

    /// `POST /{index}/_delete_by_query` and `_update_by_query`, without scripts: the matching documents are read in
    /// batches of `scroll_size` from a scroll (memory holds one batch) and written back with `if_seq_no`, so a
    /// document changed meanwhile is a version conflict, which aborts (`conflicts=abort`, 409) or is counted
    /// (`conflicts=proceed`). `max_docs`, `refresh`, `slices` and `requests_per_second` are taken as Elasticsearch
    /// takes them; the work runs in the request (`wait_for_completion=false` is refused).
    func byQuery(_ request: ESRequest, _ expression: String, action: ByQueryAction) throws(StoreError) -> ESResponse {
        let started = DispatchTime.now()
        var search = SearchRequest()
        var conflicts = request.parameters["conflicts"] ?? "abort"
        var maxDocs = try request.integer("max_docs")
        if let body = try request.json() {
            guard case .object(let object) = body else { throw .parsing("request body must be an object") }
            for (key, value) in object {
                switch key {
                case "query": search.query = try Query.parse(value)
                case "max_docs", "size":
                    maxDocs = try SearchRequestValue.integer(key, value)
                case "conflicts": conflicts = value.stringValue ?? ""
                case "script":
                    throw .illegalArgument("[script] is not supported by this store: Quarry has no scripting")
                case "slice": throw .illegalArgument("[slice] is not supported by this store; use slices")
                default: throw .parsing("Unknown key for a \(value.tokenName) in [\(key)].")
                }
            }
        }
        guard conflicts == "abort" || conflicts == "proceed" else {
            throw Self.validationFailed(["conflicts may only be \"proceed\" or \"abort\" but was [\(conflicts)]"])
        }
        if let maxDocs, maxDocs <= 0 {
            throw Self.validationFailed(["maxDocs must be greater than 0 if provided, was [\(maxDocs)]"])
        }
        if let slices = request.parameters["slices"], slices != "auto", (Int(slices) ?? 0) < 1 {
            throw Self.validationFailed(["slices must be greater than 0 but was [\(slices)]"])
        }
        if request.parameters["wait_for_completion"] == "false" {
            throw .illegalArgument(
                "wait_for_completion=false is not supported by this store: the request runs to its end"
            )
        }
        let batchSize = try request.integer("scroll_size") ?? 1_000
        guard batchSize > 0 else { throw Self.validationFailed(["scroll_size must be greater than 0"]) }
        search.size = min(batchSize, maxDocs ?? Int.max)
        search.sort = [try SortField.parse("_doc")]
        search.seqNoPrimaryTerm = true
        search.source = SourceFilter(enabled: action == .update)
        let options = try request.indicesOptions(.search)

        var page = try store.openScroll(expression, search, options: options, keepAlive: 300_000, owner: "by-query")
        defer { _ = store.clearScrolls(page.scrollID.map { [$0] }, owner: "by-query") }
        let total = min(page.total, maxDocs ?? Int.max)
        var (done, batches, versionConflicts) = (0, 0, 0)
        var failures: [JSON] = []
        while !page.hits.isEmpty, done + versionConflicts < total {
            batches += 1
            let hits = page.hits.prefix(total - done - versionConflicts)
            let items = hits.map { hit in
                let conditions = WriteConditions(ifSeqNo: hit.seqNo, ifPrimaryTerm: 1)
                switch action {
                case .delete:
                    return EmbeddedStore.BulkItem(
                        index: hit.index,
                        operation: .delete(id: hit.id ?? "", conditions: conditions)
                    )
                case .update:
                    let source = hit.source ?? .object([:])
                    return EmbeddedStore.BulkItem(
                        index: hit.index,
                        operation: .index(
                            IndexRequest(
                                id: hit.id ?? "",
                                source: source.serializedBytes(),
                                document: source,
                                conditions: conditions
                            )
                        )
                    )
                }
            }
            for result in store.bulk(items) {
                guard let error = result.error else {
                    done += 1
                    continue
                }
                if error.status == 409 { versionConflicts += 1 }
                if error.status != 409 || conflicts == "abort" {
                    failures.append([
                        "index": .string(result.index), "id": .string(result.id), "cause": error.json,
                        "status": .int(Int64(error.status)),
                    ])
                }
            }
            if !failures.isEmpty { break }
            guard let id = page.scrollID else { break }
            page = try store.scroll(id, keepAlive: 300_000, owner: "by-query")
        }
        if try request.flag("refresh") { _ = try store.refresh(expression) }
        var response: JSONObject = [
            "took": .int(Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)),
            "timed_out": false, "total": .int(Int64(total)),
        ]
        response[action == .delete ? "deleted" : "updated"] = .int(Int64(done))
        response["batches"] = .int(Int64(batches))
        response["version_conflicts"] = .int(Int64(versionConflicts))
        response["noops"] = 0
        response["retries"] = ["bulk": 0, "search": 0]
        response["throttled_millis"] = 0
        response["requests_per_second"] = .double(
            request.parameters["requests_per_second"].flatMap(Double.init) ?? -1
        )
        response["throttled_until_millis"] = 0
        response["failures"] = .array(failures)
        let status = failures.first?["status"]?.intValue.map(Int.init) ?? 200
        return ESResponse(status: status, json: .object(response))
    }

    /// `POST /_delete_by_query/{task_id}/_rethrottle` (and `_update_by_query`): by-query requests run to their end in
    /// the request here, so no task is ever running; another node's task is answered as Elasticsearch answers it.
    func rethrottle(_ request: ESRequest, taskID: String) throws(StoreError) -> ESResponse {
        guard request.parameters["requests_per_second"] != nil else {
            throw Self.validationFailed(["requests_per_second must be set"])
        }
        let node = String(taskID.split(separator: ":").first ?? "")
        guard node == Self.nodeID else {
            return ESResponse(json: [
                "nodes": [:],
                "node_failures": [
                    [
                        "type": "failed_node_exception", "reason": .string("Failed node [\(node)]"),
                        "node_id": .string(node),
                        "caused_by": [
                            "type": "no_such_node_exception", "reason": .string("No such node [\(node)]"),
                            "node_id": .string(node),
                        ],
                    ]
                ],
            ])
        }
        throw StoreError(type: "resource_not_found_exception", reason: "task [\(taskID)] is missing", status: 404)
    }

    /// The node id Quarry answers as (its one node).
    static let nodeID = "quarry"
}

/// Integers of a request body, read as Elasticsearch reads them.
enum SearchRequestValue {
    static func integer(_ key: String, _ value: JSON) throws(StoreError) -> Int {
        guard let number = value.intValue, number >= Int64(Int32.min), number <= Int64(Int32.max) else {
            throw .xContentParse("[\(key)] failed to parse field [\(key)]")
        }
        return Int(number)
    }
}
