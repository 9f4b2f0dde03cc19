import QuarryCore
package import QuarrySearch

/// Reads the NDJSON body of `_bulk`: action lines and their sources. Structural errors fail the whole request, as
/// in ES; a source that is not valid JSON fails only its item. The sources of `index` and `create` are passed on as
/// bytes, for the store to read once as it indexes them.
package struct BulkParser {
    package struct Entry {
        package var action: String
        package var item: EmbeddedStore.BulkItem?
        package var failure: WriteResult?
    }

    package let body: [UInt8]
    package let defaultIndex: String?

    package init(body: [UInt8], defaultIndex: String?) {
        self.body = body
        self.defaultIndex = defaultIndex
    }

    package func parse() throws(StoreError) -> [Entry] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        while let offset = body.firstIndex(of: 0x0A, from: start) {
            lines.append(body[start..<offset])
            start = offset + 1
        }
        if start < body.count {
            if body[start...].contains(where: { $0 > 0x20 }) {
                throw .illegalArgument("The bulk request must be terminated by a newline [\\n]")
            }
        }
        var entries: [Entry] = []
        var index = 0
        while index < lines.count {
            let lineNumber = index + 1
            let line = lines[index]
            index += 1
            guard line.contains(where: { $0 > 0x20 }) else { continue }
            let action: JSON
            do {
                action = try JSON.parse(line)
            } catch {
                throw .xContentParse(error.description)
            }
            guard case .object(let object) = action, object.count == 1, let (kind, metaJSON) = object.first else {
                throw .illegalArgument(
                    "Malformed action/metadata line [\(lineNumber)], expected START_OBJECT or END_OBJECT but found "
                        + "[\(action.tokenName)]"
                )
            }
            guard ["index", "create", "delete", "update"].contains(kind) else {
                throw .illegalArgument(
                    "Malformed action/metadata line [\(lineNumber)], expected field [create], [delete], [index] or "
                        + "[update] but found [\(kind)]"
                )
            }
            guard case .object(let meta) = metaJSON else {
                throw .illegalArgument(
                    "Malformed action/metadata line [\(lineNumber)], expected START_OBJECT but found "
                        + "[\(metaJSON.tokenName)]"
                )
            }
            var targetIndex = defaultIndex
            var id: String?
            var ifSeqNo: Int64?
            var ifPrimaryTerm: Int64?
            var version: Int64?
            var versionType: String?
            var opType: String?
            for (key, value) in meta {
                // Metadata values are simple values (the `_source` option excepted), as Elasticsearch reads them.
                if key != "_source" && key != "dynamic_templates", value.isContainer {
                    throw .illegalArgument(
                        "Malformed action/metadata line [\(lineNumber)], expected a simple value for field [\(key)] "
                            + "but found [\(value.tokenName)]"
                    )
                }
                func long() throws(StoreError) -> Int64 {
                    guard let number = value.intValue ?? value.stringValue.flatMap({ Int64($0) }) else {
                        throw .illegalArgument(
                            "Malformed action/metadata line [\(lineNumber)]: [\(key)] must be a number, found "
                                + "[\(value.serialized())]"
                        )
                    }
                    return number
                }
                switch key {
                case "_index": targetIndex = value.stringValue
                case "_id": id = value.stringValue ?? value.intValue.map { String($0) }
                case "if_seq_no": ifSeqNo = try long()
                case "if_primary_term": ifPrimaryTerm = try long()
                case "version": version = try long()
                case "version_type": versionType = value.stringValue
                case "op_type": opType = value.stringValue
                case "routing", "_routing", "pipeline", "require_alias", "retry_on_conflict", "_source",
                    "dynamic_templates", "list_executed_pipelines", "require_data_stream":
                    continue
                default:
                    throw .illegalArgument(
                        "Action/metadata line [\(lineNumber)] contains an unknown parameter [\(key)]"
                    )
                }
            }
            var sourceLine: ArraySlice<UInt8> = []
            if kind != "delete" {
                guard index < lines.count else {
                    throw StoreError(
                        type: "action_request_validation_exception",
                        reason: "Validation Failed: 1: source is missing;",
                        status: 400
                    )
                }
                sourceLine = lines[index]
                index += 1
            }
            guard let targetIndex else {
                throw StoreError(
                    type: "action_request_validation_exception",
                    reason: "Validation Failed: 1: index is missing;",
                    status: 400
                )
            }
            let itemID = id ?? ""
            let conditions: WriteConditions
            do {
                conditions = try ElasticsearchAPI.conditions(
                    ifSeqNo: ifSeqNo,
                    ifPrimaryTerm: ifPrimaryTerm,
                    version: version,
                    versionType: versionType,
                    kind: kind == "index" && opType == "create" ? "create" : kind
                )
            } catch {
                entries.append(Entry(action: kind, failure: .failure(index: targetIndex, id: itemID, error)))
                continue
            }
            if let id {
                do { try ElasticsearchAPI.validateID(id) } catch {
                    entries.append(Entry(action: kind, failure: .failure(index: targetIndex, id: id, error)))
                    continue
                }
            } else if kind != "index" && kind != "create" {
                throw StoreError(
                    type: "action_request_validation_exception",
                    reason: "Validation Failed: 1: id is missing;",
                    status: 400
                )
            }
            let operation: WriteOperation
            switch kind {
            case "delete":
                operation = .delete(id: itemID, conditions: conditions)
            case "update":
                do throws(StoreError) {
                    let body: JSONObject
                    do {
                        body = try JSON.parse(sourceLine).objectValue ?? [:]
                    } catch {
                        throw .sourceParsing(error)
                    }
                    operation = .update(
                        try ElasticsearchAPI.updateRequest(id: itemID, body: body, conditions: conditions)
                    )
                } catch {
                    entries.append(Entry(action: kind, failure: .failure(index: targetIndex, id: itemID, error)))
                    continue
                }
            default:
                operation = .index(
                    IndexRequest(
                        id: id,
                        source: Array(sourceLine).trimmedWhitespace,
                        createOnly: kind == "create" || opType == "create",
                        conditions: conditions
                    )
                )
            }
            entries.append(Entry(action: kind, item: .init(index: targetIndex, operation: operation)))
        }
        guard !entries.isEmpty else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: no requests added;",
                status: 400
            )
        }
        return entries
    }
}
