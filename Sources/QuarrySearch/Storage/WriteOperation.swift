public import QuarryCore

/// One document write, as `_bulk`, `_doc`, `_create` and `_update` express it.
public enum WriteOperation: Sendable {
    /// Index (or create) a document; `source` is kept byte for byte as `_source`.
    case index(IndexRequest)
    case delete(id: String, conditions: WriteConditions)
    case update(UpdateRequest)

    public var id: String? {
        switch self {
        case .index(let request): request.id
        case .delete(let id, _): id
        case .update(let request): request.id
        }
    }
}

/// Optimistic-concurrency conditions (`if_seq_no`, `if_primary_term`, external `version`).
public struct WriteConditions: Sendable, Hashable {
    public var ifSeqNo: Int64?
    public var ifPrimaryTerm: Int64?
    /// A version kept by another system (`version_type=external|external_gte`): the write succeeds only when it is
    /// newer than the document's (or, for `external_gte`, not older), and the document then takes that version.
    public var externalVersion: ExternalVersion?

    public struct ExternalVersion: Sendable, Hashable {
        public var version: Int64
        /// `external_gte`: an equal version is accepted too.
        public var allowsEqual: Bool

        public init(version: Int64, allowsEqual: Bool) {
            self.version = version
            self.allowsEqual = allowsEqual
        }

        /// Why a write with this version may not replace a document at `current`, or `nil` when it may.
        func conflict(with current: Int64) -> String? {
            if allowsEqual {
                return version >= current
                    ? nil
                    : "version conflict, current version [\(current)] is higher than the one provided [\(version)]"
            }
            return version > current
                ? nil
                : "version conflict, current version [\(current)] is higher or equal to the one provided [\(version)]"
        }
    }

    public init(ifSeqNo: Int64? = nil, ifPrimaryTerm: Int64? = nil, externalVersion: ExternalVersion? = nil) {
        self.ifSeqNo = ifSeqNo
        self.ifPrimaryTerm = ifPrimaryTerm
        self.externalVersion = externalVersion
    }
}

public struct IndexRequest: Sendable {
    public var id: String?
    public var source: [UInt8]
    /// The source parsed, when the caller has it; nil lets the store index `source` as it reads it, without a tree
    /// (a source that is not a JSON object then fails its item with Elasticsearch's `document_parsing_exception`).
    public var document: JSON?
    /// `op_type=create`: fail when the id exists.
    public var createOnly: Bool
    public var conditions: WriteConditions

    public init(
        id: String?,
        source: [UInt8],
        document: JSON? = nil,
        createOnly: Bool = false,
        conditions: WriteConditions = .init()
    ) {
        self.id = id
        self.source = source
        self.document = document
        self.createOnly = createOnly
        self.conditions = conditions
    }
}

public struct UpdateRequest: Sendable {
    public var id: String
    /// The partial document merged into the existing one.
    public var doc: JSON?
    public var upsert: JSON?
    public var docAsUpsert: Bool
    public var detectNoop: Bool
    public var conditions: WriteConditions

    public init(
        id: String,
        doc: JSON?,
        upsert: JSON? = nil,
        docAsUpsert: Bool = false,
        detectNoop: Bool = true,
        conditions: WriteConditions = .init()
    ) {
        self.id = id
        self.doc = doc
        self.upsert = upsert
        self.docAsUpsert = docAsUpsert
        self.detectNoop = detectNoop
        self.conditions = conditions
    }
}

/// The outcome of one write, in the shape of ES's per-item results.
public struct WriteResult: Sendable {
    public var index: String
    public var id: String
    public var version: Int64
    /// `created`, `updated`, `deleted`, `not_found` or `noop`.
    public var result: String
    public var seqNo: Int64
    public var primaryTerm: Int64 = 1
    public var status: Int
    public var error: StoreError?

    /// The item object ES writes in a bulk response or as the body of a single write.
    public func json(forceRefresh: Bool = false) -> JSON {
        if let error {
            return [
                "_index": .string(index), "_id": .string(id), "status": .int(Int64(error.status)),
                "error": error.json,
            ]
        }
        var object: JSONObject = [
            "_index": .string(index), "_id": .string(id), "_version": .int(version), "result": .string(result),
        ]
        if forceRefresh { object["forced_refresh"] = true }
        object["_shards"] = ["total": 1, "successful": result == "noop" ? 0 : 1, "failed": 0]
        object["_seq_no"] = .int(seqNo)
        object["_primary_term"] = .int(primaryTerm)
        object["status"] = .int(Int64(status))
        return .object(object)
    }

    /// A failed item.
    public static func failure(index: String, id: String, _ error: StoreError) -> WriteResult {
        WriteResult(index: index, id: id, version: -1, result: "error", seqNo: -1, status: error.status, error: error)
    }
}

/// A stored document as `GET /{index}/_doc/{id}` returns it.
public struct StoredDocument: Sendable {
    public var index: String
    public var id: String
    public var version: Int64
    public var seqNo: Int64
    public var primaryTerm: Int64 = 1
    public var source: [UInt8]
}
