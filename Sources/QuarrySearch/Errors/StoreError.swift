public import QuarryCore

/// An error of the embedded store, carrying what Elasticsearch would answer: its exception `type`, `reason`, HTTP
/// `status`, the extra fields ES adds (`index`, `index_uuid`, `resource.id`, …) and an optional cause.
///
/// ```swift
/// throw StoreError.indexNotFound("logs")  // index_not_found_exception, 404
/// ```
public struct StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// ES's exception name, such as `index_not_found_exception`.
    public var type: String
    public var reason: String
    /// The HTTP status ES answers with.
    public var status: Int
    /// Extra members of the error object, in order.
    public var metadata: JSONObject
    /// The underlying error (`caused_by`).
    public var causedBy: [StoreError]
    /// Wrapper errors such as `search_phase_execution_exception` report their cause as `root_cause`.
    public var rootCauseOverride: [StoreError]?

    public init(
        type: String,
        reason: String,
        status: Int,
        metadata: JSONObject = [:],
        causedBy: StoreError? = nil
    ) {
        self.type = type
        self.reason = reason
        self.status = status
        self.metadata = metadata
        self.causedBy = causedBy.map { [$0] } ?? []
    }

    public var description: String { "\(type): \(reason)" }

    /// The innermost causes, as ES lists them in `root_cause`.
    public var rootCauses: [StoreError] {
        if let rootCauseOverride { return rootCauseOverride }
        if let cause = causedBy.first { return cause.rootCauses }
        return [self]
    }

    /// The error object (`{"type", "reason", …, "caused_by"}`) without `root_cause`.
    public var json: JSON {
        var object: JSONObject = ["type": .string(type), "reason": .string(reason)]
        for (key, value) in metadata { object[key] = value }
        if let cause = causedBy.first { object["caused_by"] = cause.json }
        return .object(object)
    }

    /// The whole response body: `{"error": {"root_cause": [...], ...}, "status": N}`.
    public var responseBody: JSON {
        var error: JSONObject = ["root_cause": .array(rootCauses.map(\.json))]
        if case .object(let object) = json {
            for (key, value) in object { error[key] = value }
        }
        return ["error": .object(error), "status": .int(Int64(status))]
    }
}

extension StoreError {
    public static func indexNotFound(_ name: String) -> StoreError {
        StoreError(
            type: "index_not_found_exception",
            reason: "no such index [\(name)]",
            status: 404,
            metadata: [
                "resource.type": "index_or_alias", "resource.id": .string(name), "index_uuid": "_na_",
                "index": .string(name),
            ]
        )
    }

    public static func indexAlreadyExists(_ name: String, uuid: String) -> StoreError {
        StoreError(
            type: "resource_already_exists_exception",
            reason: "index [\(name)/\(uuid)] already exists",
            status: 400,
            metadata: ["index_uuid": .string(uuid), "index": .string(name)]
        )
    }

    public static func invalidIndexName(_ name: String, _ why: String) -> StoreError {
        StoreError(
            type: "invalid_index_name_exception",
            reason: "Invalid index name [\(name)], \(why)",
            status: 400,
            metadata: ["index_uuid": "_na_", "index": .string(name)]
        )
    }

    public static func illegalArgument(_ reason: String) -> StoreError {
        StoreError(type: "illegal_argument_exception", reason: reason, status: 400)
    }

    /// Elasticsearch's refusal to sort, aggregate or read doc values of a `text` field.
    static func textFieldHasNoDocValues(_ field: String) -> StoreError {
        .illegalArgument(
            "Text fields are not optimised for operations that require per-document field data like aggregations and "
                + "sorting, so these operations are disabled by default. Please use a keyword field instead. "
                + "Alternatively, set fielddata=true on [\(field)] in order to load field data by uninverting the "
                + "inverted index. Note that this can use significant memory."
        )
    }

    public static func parsing(_ reason: String) -> StoreError {
        StoreError(type: "parsing_exception", reason: reason, status: 400)
    }

    public static func xContentParse(_ reason: String) -> StoreError {
        StoreError(type: "x_content_parse_exception", reason: reason, status: 400)
    }

    public static func mapperParsing(_ reason: String, causedBy: StoreError? = nil) -> StoreError {
        StoreError(type: "mapper_parsing_exception", reason: reason, status: 400, causedBy: causedBy)
    }

    public static func documentParsing(_ reason: String, causedBy: StoreError? = nil) -> StoreError {
        StoreError(type: "document_parsing_exception", reason: reason, status: 400, causedBy: causedBy)
    }

    /// A document's source that is not JSON, in the words and shape of Elasticsearch's `document_parsing_exception`.
    public static func sourceParsing(_ error: JSONParseError) -> StoreError {
        .documentParsing(
            "[\(error.line):\(error.column)] failed to parse: \(error.reason)",
            causedBy: .xContentParse(error.description)
        )
    }

    public static func versionConflict(index: String, uuid: String, id: String, reason: String) -> StoreError {
        StoreError(
            type: "version_conflict_engine_exception",
            reason: "[\(id)]: \(reason)",
            status: 409,
            metadata: ["index_uuid": .string(uuid), "shard": "0", "index": .string(index)]
        )
    }

    public static func documentMissing(index: String, uuid: String, id: String) -> StoreError {
        StoreError(
            type: "document_missing_exception",
            reason: "[\(id)]: document missing",
            status: 404,
            metadata: ["index_uuid": .string(uuid), "shard": "0", "index": .string(index)]
        )
    }

    public static func resourceNotFound(_ reason: String) -> StoreError {
        StoreError(type: "resource_not_found_exception", reason: reason, status: 404)
    }

    /// A failure inside the store that is not the caller's fault (disk full, corrupt file).
    public static func internalFailure(_ reason: String) -> StoreError {
        StoreError(type: "exception", reason: reason, status: 500)
    }

    /// Wraps a query-phase failure as ES does: `search_phase_execution_exception` whose root cause is the
    /// shard's error.
    public static func searchPhase(_ cause: StoreError, index: String) -> StoreError {
        var error = StoreError(
            type: "search_phase_execution_exception",
            reason: "all shards failed",
            status: cause.status,
            metadata: [
                "phase": "query", "grouped": true,
                "failed_shards": [["shard": 0, "index": .string(index), "node": "quarry", "reason": cause.json]],
            ],
            causedBy: cause
        )
        error.rootCauseOverride = [cause]
        return error
    }
}
