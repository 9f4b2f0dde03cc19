import Foundation
import QuarryCore
import QuarrySearch

extension ElasticsearchAPI {
    static let refreshValues: Set<String> = ["", "true", "false", "wait_for"]

    func checkRefresh(_ request: ESRequest) throws(StoreError) -> Bool {
        guard let refresh = request.parameters["refresh"] else { return false }
        guard Self.refreshValues.contains(refresh) else {
            throw .illegalArgument("Unknown value for refresh: [\(refresh)].")
        }
        return refresh == "" || refresh == "true"
    }

    /// The concurrency conditions of a single-document write of `kind` (`index`, `create`, `delete`, `update`).
    func conditions(_ request: ESRequest, kind: String) throws(StoreError) -> WriteConditions {
        try Self.conditions(
            ifSeqNo: try request.long("if_seq_no"),
            ifPrimaryTerm: try request.long("if_primary_term"),
            version: try request.long("version"),
            versionType: request.parameters["version_type"],
            kind: kind
        )
    }

    /// Elasticsearch's rules for `if_seq_no`, `if_primary_term`, `version` and `version_type` on a write of
    /// `kind`, with its validation messages.
    static func conditions(
        ifSeqNo: Int64?,
        ifPrimaryTerm: Int64?,
        version: Int64?,
        versionType: String?,
        kind: String
    ) throws(StoreError) -> WriteConditions {
        func invalid(_ reason: String) -> StoreError {
            StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: \(reason);",
                status: 400
            )
        }
        var conditions = WriteConditions(ifSeqNo: ifSeqNo, ifPrimaryTerm: ifPrimaryTerm)
        let type = versionType ?? "internal"
        switch type {
        case "internal":
            if version != nil {
                throw invalid(
                    kind == "create"
                        ? "create operations do not support explicit versions. use index instead"
                        : "internal versioning can not be used for optimistic concurrency control. Please use "
                            + "`if_seq_no` and `if_primary_term` instead"
                )
            }
        case "external", "external_gt", "external_gte":
            let name = type == "external_gte" ? "EXTERNAL_GTE" : "EXTERNAL"
            if kind == "update" { throw invalid("version type [\(name)] is not supported by the update API") }
            if kind == "create" {
                throw invalid("create operations only support internal versioning. use index instead")
            }
            guard let version, version >= 0 else {
                throw invalid("illegal version value [\(version ?? -3)] for version type [\(name)]")
            }
            if ifSeqNo != nil { throw invalid("compare and write operations can not use versioning") }
            conditions.externalVersion = .init(version: version, allowsEqual: type == "external_gte")
        case "force":
            throw invalid("version type [force] may no longer be used")
        default:
            throw .illegalArgument("No version type match [\(type)]")
        }
        if let ifSeqNo, ifSeqNo < 0 {
            throw invalid("ifSeqNo is unassigned, but primary term is [\(ifPrimaryTerm ?? 0)]")
        }
        return conditions
    }

    // MARK: Single documents

    func indexDocument(
        _ request: ESRequest,
        _ index: String,
        id: String?,
        create: Bool
    ) throws(StoreError)
        -> ESResponse
    {
        let forced = try checkRefresh(request)
        if let id { try Self.validateID(id) }
        guard let document = try documentBody(request, id: id ?? "") else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: source is missing;",
                status: 400
            )
        }
        var createOnly = create
        if let opType = request.parameters["op_type"] {
            guard opType == "create" || opType == "index" else {
                throw .illegalArgument("opType must be 'create' or 'index', found: [\(opType)]")
            }
            createOnly = createOnly || opType == "create"
        }
        let result = try store.write(
            index: index,
            .index(
                IndexRequest(
                    id: id,
                    source: request.body.trimmedWhitespace,
                    document: document,
                    createOnly: createOnly,
                    conditions: try conditions(request, kind: createOnly ? "create" : "index")
                )
            )
        )
        return ESResponse(status: result.status, json: result.singleJSON(forced: forced))
    }

    /// Parses a document body, reporting malformed JSON as ES's `document_parsing_exception`.
    private func documentBody(_ request: ESRequest, id: String) throws(StoreError) -> JSON? {
        guard request.body.contains(where: { $0 > 0x20 }) else { return nil }
        do {
            let json = try JSON.parse(request.body)
            guard case .object = json else {
                throw StoreError.documentParsing("failed to parse, document is empty")
            }
            return json
        } catch let error as JSONParseError {
            throw StoreError.sourceParsing(error)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .internalFailure("\(error)")
        }
    }

    static func validateID(_ id: String) throws(StoreError) {
        if id.utf8.count > 512 {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: id [\(id)] is too long, must be no longer than 512 bytes but was: "
                    + "\(id.utf8.count);",
                status: 400
            )
        }
        if id.isEmpty {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: if _id is specified it must not be empty;",
                status: 400
            )
        }
    }

    func getDocument(
        _ request: ESRequest,
        _ index: String,
        _ id: String,
        sourceOnly: Bool
    ) throws(StoreError)
        -> ESResponse
    {
        guard let document = try store.get(index: index, id: id) else {
            if sourceOnly {
                throw StoreError(
                    type: "resource_not_found_exception",
                    reason: "Document not found [\(index)]/[\(id)]",
                    status: 404
                )
            }
            return ESResponse(
                status: 404,
                json: [
                    "_index": .string(try store.resolve(index, options: .strict).first ?? index), "_id": .string(id),
                    "found": false,
                ]
            )
        }
        let filter = try sourceFilter(request)
        var source = (try? JSON.parse(document.source)) ?? .object([:])
        if filter.isFiltering { source = filter.apply(source) }
        if sourceOnly { return ESResponse(json: source) }
        var object: JSONObject = [
            "_index": .string(document.index), "_id": .string(document.id), "_version": .int(document.version),
            "_seq_no": .int(document.seqNo), "_primary_term": .int(document.primaryTerm), "found": true,
        ]
        if filter.enabled { object["_source"] = source }
        return ESResponse(json: .object(object))
    }

    /// `_source`, `_source_includes` and `_source_excludes` URL parameters.
    func sourceFilter(_ request: ESRequest) throws(StoreError) -> SourceFilter {
        var filter = SourceFilter()
        if let source = request.parameters["_source"] {
            switch source {
            case "false": filter.enabled = false
            case "true", "": break
            default: filter.includes = source.split(separator: ",").map(String.init)
            }
        }
        if let includes = request.parameters["_source_includes"] ?? request.parameters["_source_include"] {
            filter.includes = includes.split(separator: ",").map(String.init)
        }
        if let excludes = request.parameters["_source_excludes"] ?? request.parameters["_source_exclude"] {
            filter.excludes = excludes.split(separator: ",").map(String.init)
        }
        return filter
    }

    func documentExists(_ request: ESRequest, _ index: String, _ id: String) throws(StoreError) -> ESResponse {
        do {
            let found = try store.get(index: index, id: id) != nil
            return ESResponse(status: found ? 200 : 404, body: .empty)
        } catch {
            return ESResponse(status: error.status, body: .empty)
        }
    }

    func deleteDocument(_ request: ESRequest, _ index: String, _ id: String) throws(StoreError) -> ESResponse {
        let forced = try checkRefresh(request)
        _ = try store.resolve(index, options: .strict)
        let result = try store.write(index: index, .delete(id: id, conditions: try conditions(request, kind: "delete")))
        return ESResponse(status: result.status, json: result.singleJSON(forced: forced))
    }

    func updateDocument(_ request: ESRequest, _ index: String, _ id: String) throws(StoreError) -> ESResponse {
        let forced = try checkRefresh(request)
        let body = try request.requiredObject()
        let update = try Self.updateRequest(id: id, body: body, conditions: try conditions(request, kind: "update"))
        let result = try store.write(index: index, .update(update))
        return ESResponse(status: result.status, json: result.singleJSON(forced: forced))
    }

    static func updateRequest(
        id: String,
        body: JSONObject,
        conditions: WriteConditions
    ) throws(StoreError)
        -> UpdateRequest
    {
        for key in body.keys {
            switch key {
            case "doc", "upsert", "doc_as_upsert", "detect_noop", "_source", "scripted_upsert": continue
            case "script":
                throw .illegalArgument("scripted updates are not supported by this store; send a partial [doc]")
            default:
                throw .xContentParse("[1:2] [UpdateRequest] unknown field [\(key)]")
            }
        }
        if let doc = body["doc"], doc.objectValue == nil {
            throw .xContentParse("[1:8] [UpdateRequest] failed to parse field [doc]")
        }
        guard body["doc"] != nil || body["upsert"] != nil else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: script or doc is missing;",
                status: 400
            )
        }
        return UpdateRequest(
            id: id,
            doc: body["doc"],
            upsert: body["upsert"],
            docAsUpsert: body["doc_as_upsert"]?.boolValue ?? false,
            detectNoop: body["detect_noop"]?.boolValue ?? true,
            conditions: conditions
        )
    }

    // MARK: Bulk

    func bulk(_ request: ESRequest, defaultIndex: String?) throws(StoreError) -> ESResponse {
        let started = ContinuousClock.now
        let forced = try checkRefresh(request)
        var parsed = try BulkParser(body: request.body, defaultIndex: defaultIndex).parse()
        authorizeItems(&parsed, request.authentication)
        let written = store.bulk(parsed.compactMap(\.item))
        var results = written.makeIterator()
        var items: [UInt8] = []
        items.reserveCapacity(parsed.count * 200)
        var errors = false
        for (position, entry) in parsed.enumerated() {
            let result = entry.failure ?? results.next()!
            if position > 0 { items.append(UInt8(ascii: ",")) }
            if result.error != nil {
                errors = true
                JSON.object([entry.action: result.json()]).write(to: &items)
            } else {
                result.writeItem(action: entry.action, forcedRefresh: forced, to: &items)
            }
        }
        let took = started.duration(to: .now)
        let milliseconds = took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000
        var body: [UInt8] = Array(#"{"errors":\#(errors),"took":\#(milliseconds),"items":["#.utf8)
        body.reserveCapacity(body.count + items.count + 2)
        body += items
        body += Array("]}".utf8)
        return ESResponse(status: 200, body: .serializedJSON(body))
    }
}

extension ElasticsearchAPI {
    /// Fails the items of a bulk request that the caller may not perform, as Elasticsearch does: each with its own
    /// 403, the others written.
    func authorizeItems(_ entries: inout [BulkParser.Entry], _ authentication: Authentication) {
        let actions = [Action.indexDocument, Action.createDocument, Action.update, Action.delete, Action.autoCreate]
        guard let table = authentication.indexTable(for: actions, store: store) else { return }
        for position in entries.indices {
            guard let item = entries[position].item else { continue }
            let action: String
            switch item.operation {
            case .index(let request): action = request.createOnly ? Action.createDocument : Action.indexDocument
            case .update: action = Action.update
            case .delete: action = Action.delete
            }
            do {
                if case .index = item.operation {
                    try authentication.checkDocumentWrite(action, index: item.index, table: table)
                } else {
                    try authentication.checkNamed(action, item.index, table: table)
                }
            } catch {
                entries[position].item = nil
                entries[position].failure = .failure(index: item.index, id: item.operation.id ?? "", error)
            }
        }
    }
}

extension WriteResult {
    /// Appends a successful bulk item (`{"index":{"_index":…,"status":201}}`) without building a JSON tree: a bulk
    /// response has one per document.
    func writeItem(action: String, forcedRefresh: Bool, to bytes: inout [UInt8]) {
        bytes += Array("{\"\(action)\":{\"_index\":".utf8)
        JSON.writeString(index, to: &bytes)
        bytes += Array(",\"_id\":".utf8)
        JSON.writeString(id, to: &bytes)
        let shards = result == "noop" ? 0 : 1
        bytes += Array(
            (",\"_version\":\(version),\"result\":\"\(result)\"" + (forcedRefresh ? ",\"forced_refresh\":true" : "")
                + ",\"_shards\":{\"total\":1,\"successful\":\(shards),\"failed\":0},\"_seq_no\":\(seqNo),"
                + "\"_primary_term\":\(primaryTerm),\"status\":\(status)}}").utf8
        )
    }

    /// The body of a single-document write response (no `status` member, as ES).
    func singleJSON(forced: Bool) -> JSON {
        guard case .object(var object) = json(forceRefresh: forced) else { return json() }
        object.removeValue(forKey: "status")
        return .object(object)
    }
}

extension [UInt8] {
    var trimmedWhitespace: [UInt8] {
        var slice = self[...]
        while let first = slice.first, first == 0x20 || first == 0x0A || first == 0x0D || first == 0x09 {
            slice = slice.dropFirst()
        }
        while let last = slice.last, last == 0x20 || last == 0x0A || last == 0x0D || last == 0x09 {
            slice = slice.dropLast()
        }
        return Array(slice)
    }
}
