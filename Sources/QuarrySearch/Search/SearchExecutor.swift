import Foundation
import QuarryCore

/// A value a hit is sorted by.
enum SortValue: Sendable {
    case key(SortKey)
    case missing
    case score(Double)
    case doc(Int)
}

/// Where a page of hits ended, in the executor's order (sort values, then index, then document number): the next
/// page of a scroll starts after it.
public struct SearchCursor: Sendable {
    var values: [SortValue]
    var indexPosition: Int
    var doc: Int
}

/// One hit before the response is rendered.
struct Hit {
    var indexPosition: Int
    var index: String
    var doc: Int
    var score: Double?
    var sortValues: [SortValue]
    var stored: IndexReader.StoredHit?
    /// `docvalue_fields`' values, read while the index was open.
    var docValueFields: JSONObject?
}

/// Runs a ``SearchRequest`` over indices, as ES's query and fetch phases over shards: each index yields its best
/// `from + size` hits, which are merged in sort order.
struct SearchExecutor {
    let request: SearchRequest
    let now: Int64
    /// The request's aggregations, filled index by index.
    let collectors: [AggregationCollector]

    init(request: SearchRequest, now: Int64) {
        self.request = request
        self.now = now
        collectors = request.aggregations.map(AggregationCollector.init)
    }

    struct Outcome {
        var hits: [Hit]
        var total: Int
        var maxScore: Double?
        var terminatedEarly = false
        var aggregations: JSON?
    }

    func run(_ indices: [StoredIndex]) throws -> Outcome {
        var all: [Hit] = []
        var total = 0
        var maxScore: Double?
        var terminated = false
        for (position, index) in indices.enumerated() {
            do {
                try request.validate(against: index.metadata)
            } catch {
                throw StoreError.searchPhase(error, index: index.name)
            }
            do {
                let partial = try index.withReader { reader in try search(reader, position: position) }
                all.append(contentsOf: partial.hits)
                total += partial.total
                if let score = partial.maxScore { maxScore = max(maxScore ?? score, score) }
                terminated = terminated || partial.terminatedEarly
            } catch let error as StoreError {
                throw StoreError.searchPhase(error, index: index.name)
            }
        }
        if indices.isEmpty {
            do { try request.validateWindow(maxResultWindow: 10_000) } catch {
                throw StoreError.searchPhase(error, index: "")
            }
        }
        all.sort { precedes($0, $1) }
        let page = Array(all.dropFirst(request.from).prefix(request.size))
        var aggregations: JSON?
        if !collectors.isEmpty {
            var object = JSONObject()
            for collector in collectors { object[collector.request.name] = try collector.render() }
            aggregations = .object(object)
        }
        return Outcome(
            hits: page,
            total: total,
            maxScore: maxScore,
            terminatedEarly: terminated,
            aggregations: aggregations
        )
    }

    private var sortsByScore: Bool {
        request.sort.isEmpty || request.sort.contains { $0.target == .score }
    }

    /// Each index's best `from + size` hits, or more when a rescorer's window is larger.
    private var wanted: Int {
        max(request.from + request.size, request.rescorers.map(\.windowSize).max() ?? 0)
    }

    private func search(_ reader: IndexReader, position: Int) throws -> Outcome {
        // A scroll's later pages see the documents the index had when it was opened, after where the last page ended.
        let bound = request.snapshot?[reader.metadata.name]
        let cursor = request.cursor.map {
            Hit(indexPosition: $0.indexPosition, index: "", doc: $0.doc, score: nil, sortValues: $0.values)
        }
        // Checked before the query runs, as Elasticsearch's shards parse `docvalue_fields` with the request.
        let docValues =
            request.docvalueFields.isEmpty
            ? nil
            : try DocValueFetcher(
                request.docvalueFields,
                mappings: reader.mappings,
                limit: reader.metadata.limit(.maxDocvalueFieldsSearch)
            )
        let executor = QueryExecutor(reader: reader, now: now)
        let matches = try executor.execute(request.query)
        var documents = matches.documents
        if !collectors.isEmpty {
            // Aggregations see every match (not post_filter's narrowing), within a scroll's or point in time's view.
            let context = AggregationContext(reader: reader, now: now, generation: position)
            var failure: (any Error)?
            documents.visit { doc in
                if let bound, doc >= bound { return false }
                do {
                    for collector in collectors { try collector.collect(doc, context) }
                } catch {
                    failure = error
                    return false
                }
                return true
            }
            if let failure { throw failure }
            for collector in collectors { try collector.finishIndex(context) }
        }
        if let postFilter = request.postFilter {
            documents.formIntersection(try executor.evaluate(postFilter, scoring: false).documents)
        }
        var terminated = false
        if let limit = request.terminateAfter, limit > 0 {
            var kept = Bitmap(capacity: documents.capacity)
            var count = 0
            documents.visit { doc in
                kept.insert(doc)
                count += 1
                return count < limit
            }
            terminated = documents.count > limit
            documents = kept
        }
        let context = ScoringContext(reader: reader)
        let needScores = sortsByScore || request.trackScores || request.minScore != nil || !request.rescorers.isEmpty
        var total = documents.count
        var hits: [Hit] = []
        var maxScore: Double?

        if request.sort.isEmpty, matches.isConstant, request.minScore == nil, request.searchAfter == nil, cursor == nil,
            bound == nil, request.rescorers.isEmpty
        {
            // Every hit scores the same: the first documents in index order are the top ones.
            var first: Int?
            documents.visit { doc in
                first = first ?? doc
                return false
            }
            let score = try first.map { try matches.score($0, context) }
            maxScore = score
            documents.visit { doc in
                guard hits.count < wanted else { return false }
                hits.append(
                    Hit(
                        indexPosition: position,
                        index: reader.metadata.name,
                        doc: doc,
                        score: score,
                        sortValues: [.score(score ?? 0)]
                    )
                )
                return true
            }
        } else {
            var columns: [String: [Int64: Column?]] = [:]
            var candidates: [Hit] = []
            candidates.reserveCapacity(min(total, 1 << 16))
            let after = try request.searchAfter.map { try afterValues($0, reader) }
            // Sorted by `_doc` alone: documents are visited in that order, so the first `wanted` after the cursor are
            // the page, and the visit stops there (deep iteration costs a page, not the whole index, per request).
            let inVisitOrder =
                request.sort.count == 1 && [.doc, .shardDoc].contains(request.sort[0].target)
                && !request.sort[0].descending
                && !needScores
            var failure: (any Error)?
            documents.visit { doc in
                if let bound, doc >= bound { return !inVisitOrder }
                do {
                    var score: Double?
                    if needScores {
                        let value = try matches.score(doc, context)
                        if let minimum = request.minScore, value < minimum {
                            total -= 1
                            return true
                        }
                        score = value
                        maxScore = max(maxScore ?? value, value)
                    }
                    var values: [SortValue] = []
                    if request.sort.isEmpty {
                        values = [.score(score ?? 0)]
                    } else {
                        for field in request.sort {
                            values.append(
                                try sortValue(
                                    field,
                                    doc: doc,
                                    position: position,
                                    score: score,
                                    reader: reader,
                                    columns: &columns
                                )
                            )
                        }
                    }
                    let hit = Hit(
                        indexPosition: position,
                        index: reader.metadata.name,
                        doc: doc,
                        score: score,
                        sortValues: values
                    )
                    if let after, !isAfter(hit.sortValues, after) { return true }
                    if let cursor, !precedes(cursor, hit) { return true }
                    candidates.append(hit)
                    if inVisitOrder { return candidates.count < wanted }
                    if candidates.count >= max(4 * wanted, 4096) {
                        candidates.sort { precedes($0, $1) }
                        candidates.removeLast(candidates.count - wanted)
                    }
                } catch {
                    failure = error
                    return false
                }
                return true
            }
            if let failure { throw failure }
            candidates.sort { precedes($0, $1) }
            hits = Array(candidates.prefix(wanted))
        }
        for rescorer in request.rescorers {
            try rescore(&hits, with: rescorer, executor: executor, context: context)
            maxScore = hits.compactMap(\.score).max()
        }
        let stored = try reader.storedHits(hits.map(\.doc))
        for i in hits.indices { hits[i].stored = stored[hits[i].doc] }
        if let docValues {
            var columns: [String: [Int64: Column?]] = [:]
            for i in hits.indices {
                hits[i].docValueFields = try docValues.fetch(hits[i].doc, reader: reader, columns: &columns)
            }
        }
        if !needScores
            || (!request.sort.isEmpty && !request.trackScores && !request.sort.contains { $0.target == .score })
        {
            maxScore = nil
            for i in hits.indices { hits[i].score = nil }
        }
        return Outcome(hits: hits, total: total, maxScore: maxScore, terminatedEarly: terminated)
    }

    /// Scores the first `windowSize` hits again with `rescorer` and orders them by their new scores; the hits after
    /// the window keep their scores and come after it, as Elasticsearch's query rescorer leaves them.
    private func rescore(
        _ hits: inout [Hit],
        with rescorer: Rescorer,
        executor: QueryExecutor,
        context: ScoringContext
    ) throws {
        let window = min(rescorer.windowSize, hits.count)
        guard window > 0 else { return }
        let matches = try executor.execute(rescorer.query)
        for i in 0..<window {
            let doc = hits[i].doc
            let second = matches.documents.contains(doc) ? try matches.score(doc, context) : nil
            let score = rescorer.combine(hits[i].score ?? 0, second)
            hits[i].score = score
            hits[i].sortValues = [.score(score)]
        }
        hits[0..<window].sort { precedes($0, $1) }
    }

    private func sortValue(
        _ field: SortField,
        doc: Int,
        position: Int,
        score: Double?,
        reader: IndexReader,
        columns: inout [String: [Int64: Column?]]
    ) throws -> SortValue {
        switch field.target {
        case .score: return .score(score ?? 0)
        case .doc: return .doc(doc)
        case .shardDoc: return .doc(Self.shardDoc(position: position, doc: doc))
        case .field(let name):
            guard let definition = reader.mappings.field(name) else {
                if name == "_id" || name == "_index" { return .missing }
                if field.unmappedType != nil { return .missing }
                throw StoreError(
                    type: "query_shard_exception",
                    reason: "No mapping found for [\(name)] in order to sort on",
                    status: 400,
                    metadata: ["index_uuid": .string(reader.metadata.uuid), "index": .string(reader.metadata.name)]
                )
            }
            if definition.type.family == .text {
                throw StoreError.textFieldHasNoDocValues(name)
            }
            var cache = columns[name] ?? [:]
            let values = try reader.values(field: name, doc: doc, columns: &cache)
            columns[name] = cache
            guard !values.isEmpty else { return .missing }
            let useMax = field.mode == "max" || (field.mode == nil && field.descending)
            switch field.mode {
            case "sum", "avg":
                let numbers = values.compactMap(\.number)
                let sum = numbers.reduce(0, +)
                return .key(.double(field.mode == "sum" ? sum : sum / Double(max(1, numbers.count))))
            default:
                return .key(useMax ? values.max()! : values.min()!)
            }
        }
    }

    /// `_shard_doc`'s value: the index's position in the search above the document number, as Elasticsearch puts
    /// the shard above the document.
    static func shardDoc(position: Int, doc: Int) -> Int { position << 32 | doc }

    /// Converts `search_after` values to comparable sort values.
    private func afterValues(_ values: [JSON], _ reader: IndexReader) throws -> [SortValue] {
        guard values.count == request.sort.count || (request.sort.isEmpty && values.count == 1) else {
            throw StoreError.illegalArgument(
                "search_after has \(values.count) value(s) but sort has \(max(1, request.sort.count))."
            )
        }
        let fields = request.sort.isEmpty ? [try SortField(name: "_score", order: nil)] : request.sort
        return zip(fields, values).map { field, value in
            switch field.target {
            case .score: return .score(value.doubleValue ?? 0)
            case .doc, .shardDoc: return .doc(Int(value.intValue ?? 0))
            case .field(let name):
                if value.isNull { return .missing }
                let definition = reader.mappings.field(name)
                switch value {
                case .int(let number):
                    if number == Int64.max || number == Int64.min { return .missing }
                    if definition?.type.family == .floating { return .key(.double(Double(number))) }
                    return .key(.int(number))
                case .double(let number): return .key(.double(number))
                case .string(let text):
                    if definition?.type.family == .ip, let address = IPAddress(text) { return .key(.ip(address)) }
                    if definition?.type.family == .date, let millis = definition?.format.parse(text) {
                        return .key(.int(millis))
                    }
                    if definition?.type.family == .integer || definition?.type.family == .date, let number = Int64(text)
                    {
                        return .key(.int(number))
                    }
                    return .key(.string(text))
                case .bool(let flag): return .key(.int(flag ? 1 : 0))
                default: return .missing
                }
            }
        }
    }

    /// Whether `values` sorts strictly after `after`.
    private func isAfter(_ values: [SortValue], _ after: [SortValue]) -> Bool {
        for (i, pair) in zip(values, after).enumerated() {
            let order = compare(pair.0, pair.1, field: i)
            if order != 0 { return order > 0 }
        }
        return false
    }

    /// Sort order between two hits: the sort keys, then index, then document number.
    func precedes(_ a: Hit, _ b: Hit) -> Bool {
        for i in 0..<min(a.sortValues.count, b.sortValues.count) {
            let order = compare(a.sortValues[i], b.sortValues[i], field: i)
            if order != 0 { return order < 0 }
        }
        if a.indexPosition != b.indexPosition { return a.indexPosition < b.indexPosition }
        return a.doc < b.doc
    }

    /// -1, 0 or 1: where `a` sorts relative to `b` for sort key `field`.
    private func compare(_ a: SortValue, _ b: SortValue, field: Int) -> Int {
        let spec = field < request.sort.count ? request.sort[field] : nil
        let descending = spec?.descending ?? true
        let missingFirst: Bool = {
            guard let missing = spec?.missing else { return false }
            return missing.stringValue == "_first"
        }()
        func resolve(_ value: SortValue) -> SortValue {
            guard case .missing = value, let missing = spec?.missing, missing.stringValue != "_first",
                missing.stringValue != "_last"
            else { return value }
            switch missing {
            case .int(let n): return .key(.int(n))
            case .double(let d): return .key(.double(d))
            case .string(let s): return .key(Int64(s).map { .int($0) } ?? .string(s))
            default: return value
            }
        }
        let left = resolve(a)
        let right = resolve(b)
        var raw: Int
        switch (left, right) {
        case (.missing, .missing): return 0
        case (.missing, _): return missingFirst ? -1 : 1
        case (_, .missing): return missingFirst ? 1 : -1
        case (.score(let x), .score(let y)): raw = x < y ? -1 : (x > y ? 1 : 0)
        case (.doc(let x), .doc(let y)): raw = x < y ? -1 : (x > y ? 1 : 0)
        case (.key(let x), .key(let y)): raw = x < y ? -1 : (y < x ? 1 : 0)
        default: raw = 0
        }
        return descending ? -raw : raw
    }

    /// The JSON of a sort value, as ES writes it in `hits.hits[].sort`.
    func json(_ value: SortValue, field: Int, reader mappings: [String: Mappings]) -> JSON {
        let spec = field < request.sort.count ? request.sort[field] : nil
        switch value {
        case .score(let score): return .double(Double(Float(score)))
        case .doc(let doc): return .int(Int64(doc))
        case .key(let key):
            switch key {
            case .int(let n): return .int(n)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            case .ip(let address): return .string(address.description)
            }
        case .missing:
            guard case .field(let name)? = spec?.target else { return .null }
            let family = mappings.values.lazy.compactMap { $0.field(name)?.type.family }.first
            switch family {
            case .integer?, .date?, .boolean?, .floating?,
                nil where spec?.unmappedType != nil:
                return .int((spec?.descending ?? false) ? Int64.min : Int64.max)
            default: return .null
            }
        }
    }
}
