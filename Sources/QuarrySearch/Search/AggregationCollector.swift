import Foundation
import QuarryCore

/// What an aggregation reads in one index: its doc values (columns cached per field and segment) and its queries.
final class AggregationContext {
    let reader: IndexReader
    let executor: QueryExecutor
    /// Which index this is, so that a collector made in an earlier one prepares again.
    let generation: Int
    /// The search's `now`, for date math.
    let now: Int64
    private var columns: [String: [Int64: Column?]] = [:]

    init(reader: IndexReader, now: Int64, generation: Int) {
        self.reader = reader
        self.executor = QueryExecutor(reader: reader, now: now)
        self.generation = generation
        self.now = now
    }

    func values(_ field: String, _ doc: Int) throws -> [SortKey] {
        guard reader.mappings.field(field) != nil else { return [] }
        // In place: copying the field's cache out and back for every document was most of the cost.
        return try reader.values(field: field, doc: doc, columns: &columns[field, default: [:]])
    }
}

/// How a field's values are written in a response: a date's key has `key_as_string`, a boolean's is 1 or 0.
enum AggregationValueKind {
    case keyword, integer, floating, date, boolean, ip

    init(_ type: FieldType) {
        switch type.family {
        case .integer: self = .integer
        case .floating: self = .floating
        case .date: self = .date
        case .boolean: self = .boolean
        case .ip: self = .ip
        default: self = .keyword
        }
    }
}

/// One aggregation's state over the matching documents of every index searched, and its rendering as
/// Elasticsearch's JSON. Bucket aggregations hold one set of sub-collectors per bucket.
final class AggregationCollector {
    let request: AggregationRequest
    private var generation = -1
    private var valueKind: AggregationValueKind?
    /// A date field's own format (when it has one), for `key_as_string` and `value_as_string`.
    private var fieldFormat: DateFormat?

    // Metrics.
    private var count = 0
    private var sum = 0.0
    private var sumOfSquares = 0.0
    private var minimum: Double?
    private var maximum: Double?
    private var distinct = Set<SortKey>()
    /// Every value, for `percentiles`.
    private var samples: [Double] = []

    // Buckets, by key.
    private var buckets: [SortKey: Bucket] = [:]
    /// Single-bucket aggregations (`filter`, `missing`) and the `filters` buckets, by position.
    private var fixed: [Bucket] = []
    private var filterBitmaps: [Bitmap] = []
    /// `top_hits`' best documents so far, best first.
    private var top: [TopHit] = []

    struct TopHit {
        var values: [SortKey?]
        var generation: Int
        var doc: Int
        var index: String
        var stored: IndexReader.StoredHit?
    }

    /// `composite` and `multi_terms` buckets, by their tuple of keys (nil: a `missing_bucket`'s null).
    private var tupleBuckets: [[SortKey?]: Bucket] = [:]
    /// `composite`: keys at or after this one cannot be on the page (it already has `size` smaller keys).
    private var compositeCeiling: [SortKey?]?
    /// `composite`: the page starts after this key (`after`, read with the fields' types).
    private var compositeAfter: [SortKey?]?
    /// `composite`: how each source's keys are written, from its field's type.
    private var sourceKinds: [AggregationValueKind?] = []

    /// A `date_range`'s bounds in milliseconds, resolved against the search's `now` once.
    private var dateRanges: [(key: String?, from: Double?, to: Double?)]?

    final class Bucket {
        var documents = 0
        let subs: [AggregationCollector]
        init(_ requests: [AggregationRequest]) { subs = requests.map(AggregationCollector.init) }
    }

    init(_ request: AggregationRequest) {
        self.request = request
        switch request.kind {
        case .filter, .missing: fixed = [Bucket(request.subAggregations)]
        case .filters(let filters, _, let other):
            fixed = (0..<filters.count + (other == nil ? 0 : 1)).map { _ in Bucket(request.subAggregations) }
        case .range(_, let ranges, _): fixed = ranges.map { _ in Bucket(request.subAggregations) }
        case .dateRange(_, let ranges, _, _, _): fixed = ranges.map { _ in Bucket(request.subAggregations) }
        case .ipRange(_, let ranges, _): fixed = ranges.map { _ in Bucket(request.subAggregations) }
        default: break
        }
    }

    /// Reads what this index needs (filter bitmaps, the field's type) once per index.
    private func prepare(_ context: AggregationContext) throws {
        guard generation != context.generation else { return }
        generation = context.generation
        switch request.kind {
        case .filter(let query): filterBitmaps = [try context.executor.evaluate(query, scoring: false).documents]
        case .topHits(let from, let size, _, _):
            let window = context.reader.metadata.limit(.maxInnerResultWindow)
            guard from + size <= window else {
                throw StoreError.illegalArgument(
                    "Top hits result window is too large, the top hits aggregator [\(request.name)]'s from + size must "
                        + "be less than or equal to: [\(window)] but was [\(from + size)]. This limit can be set by "
                        + "changing the [index.max_inner_result_window] index level setting."
                )
            }
        case .composite(let sources, _, let after):
            if sourceKinds.isEmpty { sourceKinds = sources.map { _ in nil } }
            for (position, source) in sources.enumerated() {
                guard let definition = context.reader.mappings.field(source.field) else { continue }
                if definition.type.family == .text { throw StoreError.textFieldHasNoDocValues(definition.path) }
                if sourceKinds[position] == nil { sourceKinds[position] = AggregationValueKind(definition.type) }
            }
            if let after {
                compositeAfter = try zip(sources, sourceKinds).map { source, kind in
                    try Self.compositeKey(after[source.name] ?? .null, source: source, kind: kind)
                }
            }
        case .multiTerms(let fields, _, _, _):
            if sourceKinds.isEmpty { sourceKinds = fields.map { _ in nil } }
            for (position, field) in fields.enumerated() {
                guard let definition = context.reader.mappings.field(field.field) else { continue }
                try check(definition)
                if sourceKinds[position] == nil { sourceKinds[position] = AggregationValueKind(definition.type) }
            }
        case .bucketSort: break
        case .percentiles(let field, _, _, _):
            guard let definition = context.reader.mappings.field(field) else { return }
            try check(definition)
            if valueKind == nil { valueKind = AggregationValueKind(definition.type) }
        case .filters(let filters, _, _):
            filterBitmaps = try filters.map { try context.executor.evaluate($0.query, scoring: false).documents }
        case .dateRange(let field, let ranges, _, let zone, let format):
            if dateRanges == nil {
                dateRanges = try ranges.map { range in
                    func bound(_ json: JSON?) throws -> Double? {
                        switch json {
                        case nil, .null?: return nil
                        case .string(let text)?:
                            do {
                                return Double(
                                    try DateMath.resolve(
                                        text,
                                        format: format ?? .defaultFormat,
                                        timeZone: zone,
                                        now: context.now,
                                        roundUp: false
                                    )
                                )
                            } catch {
                                throw StoreError.parsing("failed to parse date field [\(text)]: \(error.reason)")
                            }
                        case let value?: return value.doubleValue
                        }
                    }
                    return (range.key, try bound(range.from), try bound(range.to))
                }
            }
            guard let definition = context.reader.mappings.field(field) else { return }
            try check(definition)
            if valueKind == nil { valueKind = AggregationValueKind(definition.type) }
        case .terms(let field, _, _, _, _, _), .metric(_, let field, _), .dateHistogram(let field, _, _, _),
            .histogram(let field, _, _, _), .range(let field, _, _), .missing(let field), .ipRange(let field, _, _):
            guard let definition = context.reader.mappings.field(field) else { return }
            try check(definition)
            if valueKind == nil { valueKind = AggregationValueKind(definition.type) }
            // Dates are written in their field's format unless the request names one, as Elasticsearch does.
            if fieldFormat == nil, definition.type.family == .date, definition.format != .defaultFormat {
                fieldFormat = definition.format
            }
        }
    }

    /// Elasticsearch's refusals: text has no doc values, and numeric metrics need numbers or dates.
    private func check(_ definition: FieldDefinition) throws {
        let family = definition.type.family
        if family == .text {
            throw StoreError.textFieldHasNoDocValues(definition.path)
        }
        let numeric: Bool = [.integer, .floating, .date, .boolean].contains(family)
        switch request.kind {
        case .metric(let metric, _, _) where ![.cardinality, .valueCount].contains(metric) && !numeric:
            throw StoreError.illegalArgument(
                "Field [\(definition.path)] of type [\(definition.type.rawValue)] is not supported for aggregation "
                    + "[\(metric.rawValue)]"
            )
        case .ipRange where family != .ip:
            throw StoreError.illegalArgument(
                "Field [\(definition.path)] of type [\(definition.type.rawValue)] is not supported for aggregation "
                    + "[ip_range]"
            )
        case .histogram, .range, .dateHistogram, .dateRange, .percentiles:
            if !numeric {
                throw StoreError.illegalArgument(
                    "Field [\(definition.path)] of type [\(definition.type.rawValue)] is not supported for aggregation "
                        + "[\(request.kindName)]"
                )
            }
        default: break
        }
    }

    func collect(_ doc: Int, _ context: AggregationContext) throws {
        try prepare(context)
        switch request.kind {
        case .terms(let field, _, _, _, let missing, let filter):
            var values = Set(try context.values(field, doc))
            if values.isEmpty, let missing, let key = Self.key(missing) { values = [key] }
            if filter.include != nil || filter.exclude != nil {
                values = values.filter { filter.admits($0) }
            }
            for value in values { try bucket(value).add(doc, context) }
        case .metric(let metric, let field, let missing):
            var values = try context.values(field, doc)
            if values.isEmpty, let missing, let key = Self.key(missing) { values = [key] }
            for value in values {
                count += 1
                if metric == .cardinality {
                    distinct.insert(value)
                    continue
                }
                guard let number = value.number else { continue }
                sum += number
                sumOfSquares += number * number
                minimum = min(minimum ?? number, number)
                maximum = max(maximum ?? number, number)
            }
        case .dateHistogram(let field, let rounding, _, let bounds):
            let keys = Set(
                try context.values(field, doc).compactMap { value -> SortKey? in
                    guard case .int(let millis) = value else { return nil }
                    let start = rounding.start(millis)
                    return bounds.admits(start) ? .int(start) : nil
                }
            )
            for key in keys { try bucket(key).add(doc, context) }
        case .histogram(let field, let interval, _, let offset):
            let keys = Set(
                try context.values(field, doc).compactMap { value -> SortKey? in
                    guard let number = value.number else { return nil }
                    return .double(((number - offset) / interval).rounded(.down) * interval + offset)
                }
            )
            for key in keys { try bucket(key).add(doc, context) }
        case .dateRange(let field, _, _, _, _):
            let numbers = try context.values(field, doc).compactMap(\.number)
            for (position, range) in (dateRanges ?? []).enumerated()
            where numbers.contains(where: { Self.within($0, range) }) {
                try fixed[position].add(doc, context)
            }
        case .range(let field, let ranges, _):
            let numbers = try context.values(field, doc).compactMap(\.number)
            for (position, range) in ranges.enumerated()
            where numbers.contains(where: { Self.within($0, range) }) {
                try fixed[position].add(doc, context)
            }
        case .ipRange(let field, let ranges, _):
            let addresses = try context.values(field, doc).compactMap { value -> IPAddress? in
                if case .ip(let address) = value { return address }
                return nil
            }
            for (position, range) in ranges.enumerated()
            where addresses.contains(where: { address in
                (range.from.map { address >= $0 } ?? true) && (range.to.map { address < $0 } ?? true)
            }) {
                try fixed[position].add(doc, context)
            }
        case .percentiles(let field, _, _, let missing):
            var values = try context.values(field, doc)
            if values.isEmpty, let missing, let key = Self.key(missing) { values = [key] }
            samples += values.compactMap(\.number)
        case .topHits(let from, let size, let sort, _):
            count += 1
            var values: [SortKey?] = []
            for field in sort {
                guard case .field(let name) = field.target else {
                    values.append(nil)
                    continue
                }
                let all = try context.values(name, doc)
                // Elasticsearch's default sort mode: the smallest value ascending, the largest descending.
                values.append(field.descending ? all.max() : all.min())
            }
            let hit = TopHit(
                values: values,
                generation: context.generation,
                doc: doc,
                index: context.reader.metadata.name,
                stored: nil
            )
            let position = top.firstIndex { precedes(hit, $0, sort) } ?? top.endIndex
            if position < from + size {
                top.insert(hit, at: position)
                if top.count > from + size { top.removeLast() }
            }
        case .filter:
            if filterBitmaps[0].contains(doc) { try fixed[0].add(doc, context) }
        case .filters(_, _, let other):
            var matched = false
            for (position, bitmap) in filterBitmaps.enumerated() where bitmap.contains(doc) {
                matched = true
                try fixed[position].add(doc, context)
            }
            if !matched, other != nil { try fixed[filterBitmaps.count].add(doc, context) }
        case .missing(let field):
            if try context.values(field, doc).isEmpty { try fixed[0].add(doc, context) }
        case .composite(let sources, let size, _):
            var keys: [[SortKey?]] = [[]]
            for source in sources {
                var values = Set(try compositeValues(source, doc, context)).map { Optional($0) }
                if values.isEmpty {
                    guard source.missingBucket else { return }
                    values = [nil]
                }
                keys = keys.flatMap { prefix in values.map { prefix + [$0] } }
            }
            for key in keys {
                if let after = compositeAfter, Self.compare(key, after, sources) <= 0 { continue }
                if let ceiling = compositeCeiling, Self.compare(key, ceiling, sources) >= 0 { continue }
                try tupleBucket(key).add(doc, context)
            }
            if tupleBuckets.count > 2 * size + 1024 {
                // Keep the `size` smallest keys: any key from the smallest dropped one on can never reach the page.
                let sorted = tupleBuckets.keys.sorted { Self.compare($0, $1, sources) < 0 }
                compositeCeiling = sorted[size]
                for key in sorted[size...] { tupleBuckets[key] = nil }
            }
        case .multiTerms(let fields, _, _, _):
            var keys: [[SortKey?]] = [[]]
            for field in fields {
                var values = Set(try context.values(field.field, doc))
                if values.isEmpty, let missing = field.missing, let key = Self.key(missing) { values = [key] }
                guard !values.isEmpty else { return }
                keys = keys.flatMap { prefix in values.map { prefix + [$0] } }
            }
            for key in keys { try tupleBucket(key).add(doc, context) }
        case .bucketSort:
            break
        }
    }

    /// A composite source's keys for `doc`: the field's values, or the histogram buckets they fall in.
    private func compositeValues(
        _ source: AggregationRequest.CompositeSource,
        _ doc: Int,
        _ context: AggregationContext
    ) throws -> [SortKey] {
        let values = try context.values(source.field, doc)
        switch source.values {
        case .terms: return values
        case .histogram(let interval):
            return values.compactMap { value in
                value.number.map { .double(($0 / interval).rounded(.down) * interval) }
            }
        case .dateHistogram(let rounding):
            return values.compactMap { value in
                guard case .int(let millis) = value else { return nil }
                return .int(rounding.start(millis))
            }
        }
    }

    /// Composite key order: source by source, each ascending or descending, a missing bucket's null first when
    /// ascending (last when descending).
    static func compare(_ a: [SortKey?], _ b: [SortKey?], _ sources: [AggregationRequest.CompositeSource]) -> Int {
        for (position, source) in sources.enumerated() {
            let order: Int
            switch (a[position], b[position]) {
            case (nil, nil): order = 0
            case (nil, _): order = -1
            case (_, nil): order = 1
            case (let x?, let y?): order = x == y ? 0 : (x < y ? -1 : 1)
            }
            if order != 0 { return source.descending ? -order : order }
        }
        return 0
    }

    /// A value of `after` as a key of `source`.
    static func compositeKey(
        _ json: JSON,
        source: AggregationRequest.CompositeSource,
        kind: AggregationValueKind?
    ) throws -> SortKey? {
        switch json {
        case .null: return nil
        case .int(let number):
            if case .histogram = source.values { return .double(Double(number)) }
            return kind == .floating ? .double(Double(number)) : .int(number)
        case .double(let number): return .double(number)
        case .bool(let flag): return .int(flag ? 1 : 0)
        case .string(let text):
            if kind == .ip, let address = IPAddress(text) { return .ip(address) }
            if kind == .date || { if case .dateHistogram = source.values { true } else { false } }() {
                if let millis = Int64(text) ?? ISO8601.parse(text) { return .int(millis) }
            }
            if kind == .integer, let number = Int64(text) { return .int(number) }
            return .string(text)
        default:
            throw StoreError.illegalArgument("[after] value of [\(source.name)] must be a value or null, got \(json)")
        }
    }

    private func tupleBucket(_ key: [SortKey?]) throws -> Bucket {
        if let existing = tupleBuckets[key] { return existing }
        // A composite page holds at most `size` buckets however many keys it passes; multi_terms holds them all.
        if case .multiTerms = request.kind, tupleBuckets.count >= Self.maximumBuckets { throw Self.tooManyBuckets() }
        let made = Bucket(request.subAggregations)
        tupleBuckets[key] = made
        return made
    }

    /// Whether `a` comes before `b` in a `top_hits` sort: the keys (a missing one last), then index, then document.
    private func precedes(_ a: TopHit, _ b: TopHit, _ sort: [SortField]) -> Bool {
        for (position, field) in sort.enumerated() {
            switch (a.values[position], b.values[position]) {
            case (nil, nil): continue
            case (nil, _): return false
            case (_, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                return field.descending ? y < x : x < y
            }
        }
        return (a.generation, a.doc) < (b.generation, b.doc)
    }

    /// Called when the documents of an index are all collected, while its reader is open: `top_hits` reads the
    /// source of its documents from this index.
    func finishIndex(_ context: AggregationContext) throws {
        guard generation == context.generation else { return }
        if case .topHits = request.kind {
            let wanted = top.indices.filter { top[$0].generation == context.generation && top[$0].stored == nil }
            let stored = try context.reader.storedHits(wanted.map { top[$0].doc })
            for position in wanted { top[position].stored = stored[top[position].doc] }
        }
        for bucket in buckets.values { for sub in bucket.subs { try sub.finishIndex(context) } }
        for bucket in tupleBuckets.values { for sub in bucket.subs { try sub.finishIndex(context) } }
        for bucket in fixed { for sub in bucket.subs { try sub.finishIndex(context) } }
    }

    private func bucket(_ key: SortKey) -> Bucket {
        if let existing = buckets[key] { return existing }
        let made = Bucket(request.subAggregations)
        buckets[key] = made
        return made
    }

    static func within(_ value: Double, _ range: (key: String?, from: Double?, to: Double?)) -> Bool {
        (range.from.map { value >= $0 } ?? true) && (range.to.map { value < $0 } ?? true)
    }

    private static func keyPrecedes(_ a: SortKey?, _ b: SortKey?) -> Bool {
        switch (a, b) {
        case (nil, nil), (_, nil): false
        case (nil, _): true
        case (let x?, let y?): x < y
        }
    }

    /// A key as `include`/`exclude` read it.
    static func text(_ key: SortKey) -> String {
        switch key {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): String(number)
        case .ip(let address): address.description
        }
    }

    /// A `missing` value as a key.
    static func key(_ json: JSON) -> SortKey? {
        switch json {
        case .int(let value): .int(value)
        case .double(let value): .double(value)
        case .string(let text): .string(text)
        case .bool(let flag): .int(flag ? 1 : 0)
        default: nil
        }
    }

    // MARK: Rendering

    /// Elasticsearch's `search.max_buckets`.
    static let maximumBuckets = 65_536

    static func tooManyBuckets() -> StoreError {
        StoreError(
            type: "too_many_buckets_exception",
            reason: "Trying to create too many buckets. Must be less than or equal to: [\(maximumBuckets)] but this "
                + "number of buckets was exceeded. This limit can be set by changing the [search.max_buckets] "
                + "cluster level setting.",
            status: 400
        )
    }

    func render() throws -> JSON {
        var object: JSONObject = [:]
        switch request.kind {
        case .terms(_, let size, let order, let minDocCount, _, _):
            let kept = buckets.filter { $0.value.documents >= max(minDocCount, 1) }
            let sorted = kept.sorted { a, b in
                for (key, ascending) in order {
                    let order = compare(a, b, by: key)
                    if order != 0 { return ascending ? order < 0 : order > 0 }
                }
                return false
            }
            let shown = sorted.prefix(size)
            object["doc_count_error_upper_bound"] = 0
            object["sum_other_doc_count"] = .int(Int64(sorted.dropFirst(size).reduce(0) { $0 + $1.value.documents }))
            object["buckets"] = .array(try shown.map { try render(key: $0.key, $0.value) })
        case .metric(let metric, _, _):
            object = renderMetric(metric)
        case .dateHistogram(_, let rounding, let minDocCount, let bounds):
            var keys = buckets.keys.compactMap { key -> Int64? in
                if case .int(let value) = key { return value }
                return nil
            }
            .sorted()
            if minDocCount == 0,
                var first = keys.first
                    ?? bounds.extended.map({ rounding.start($0.0) })
            {
                var last = keys.last ?? first
                if let extended = bounds.extended {
                    first = min(first, rounding.start(extended.0))
                    last = max(last, rounding.start(extended.1))
                }
                // Hard bounds cut the extended ones.
                if let low = bounds.hard?.min {
                    first = max(first, rounding.start(low))
                }
                if let high = bounds.hard?.max {
                    last = min(last, rounding.start(high))
                }
                var filled: [Int64] = []
                var key = first
                while key <= last {
                    guard filled.count < Self.maximumBuckets else { throw Self.tooManyBuckets() }
                    if bounds.admits(key) { filled.append(key) }
                    key = rounding.next(key)
                }
                keys = filled
            }
            object["buckets"] = .array(
                try keys.compactMap { key in
                    let bucket = buckets[.int(key)]
                    if (bucket?.documents ?? 0) < minDocCount { return nil }
                    var rendered = try render(bucket ?? Bucket(request.subAggregations))
                    rendered["key_as_string"] = .string(
                        AggregationRequest.DateRounding.string(
                            key,
                            format: rounding.format ?? fieldFormat,
                            zone: rounding.zone
                        )
                    )
                    rendered["key"] = .int(key)
                    return .object(reorder(rendered, first: ["key_as_string", "key", "doc_count"]))
                }
            )
        case .histogram(_, let interval, let minDocCount, _):
            var keys = buckets.keys.compactMap(\.number).sorted()
            if minDocCount == 0, let first = keys.first, let last = keys.last {
                guard (last - first) / interval < Double(Self.maximumBuckets) else { throw Self.tooManyBuckets() }
                keys = stride(from: first, through: last + interval / 2, by: interval).map { $0 }
            }
            object["buckets"] = .array(
                try keys.compactMap { key in
                    let bucket = buckets[.double(key)]
                    if (bucket?.documents ?? 0) < minDocCount { return nil }
                    var rendered = try render(bucket ?? Bucket(request.subAggregations))
                    rendered["key"] = .double(key)
                    return .object(reorder(rendered, first: ["key", "doc_count"]))
                }
            )
        case .range(_, let ranges, let keyed):
            var list: [(String, JSON)] = []
            for (range, bucket) in zip(ranges, fixed) {
                let text = { (value: Double?) in value.map { JSON.double($0).serialized() } ?? "*" }
                let key = range.key ?? "\(text(range.from))-\(text(range.to))"
                var rendered = try render(bucket)
                if let from = range.from { rendered["from"] = .double(from) }
                if let to = range.to { rendered["to"] = .double(to) }
                if !keyed { rendered["key"] = .string(key) }
                list.append((key, .object(reorder(rendered, first: ["key", "from", "to", "doc_count"]))))
            }
            object["buckets"] = keyed ? Self.object(list) : .array(list.map(\.1))
        case .dateRange(_, _, let keyed, let zone, let format):
            var list: [(String, JSON)] = []
            for (range, bucket) in zip(dateRanges ?? [], fixed) {
                let text = { (value: Double?) in
                    value.map { AggregationRequest.DateRounding.string(Int64($0), format: format, zone: zone) } ?? "*"
                }
                let key = range.key ?? "\(text(range.from))-\(text(range.to))"
                var rendered = try render(bucket)
                if let from = range.from {
                    rendered["from"] = .double(from)
                    rendered["from_as_string"] = .string(text(from))
                }
                if let to = range.to {
                    rendered["to"] = .double(to)
                    rendered["to_as_string"] = .string(text(to))
                }
                if !keyed { rendered["key"] = .string(key) }
                let first = ["key", "from", "from_as_string", "to", "to_as_string", "doc_count"]
                list.append((key, .object(reorder(rendered, first: first))))
            }
            object["buckets"] = keyed ? Self.object(list) : .array(list.map(\.1))
        case .ipRange(_, let ranges, let keyed):
            var list: [(String, JSON)] = []
            for (range, bucket) in zip(ranges, fixed) {
                var rendered = try render(bucket)
                if let from = range.from { rendered["from"] = .string(from.description) }
                if let to = range.to { rendered["to"] = .string(to.description) }
                if !keyed { rendered["key"] = .string(range.key) }
                list.append((range.key, .object(reorder(rendered, first: ["key", "from", "to", "doc_count"]))))
            }
            object["buckets"] = keyed ? Self.object(list) : .array(list.map(\.1))
        case .percentiles(_, let percents, let keyed, _):
            let sorted = samples.sorted()
            func percentile(_ percent: Double) -> JSON {
                guard !sorted.isEmpty else { return .null }
                let rank = percent / 100 * Double(sorted.count - 1)
                let low = Int(rank.rounded(.down))
                let high = min(low + 1, sorted.count - 1)
                return .double(sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low)))
            }
            if keyed {
                var values = JSONObject()
                for percent in percents { values[JSON.double(percent).serialized()] = percentile(percent) }
                object["values"] = .object(values)
            } else {
                object["values"] = .array(percents.map { ["key": .double($0), "value": percentile($0)] })
            }
        case .topHits(let from, _, let sort, let source):
            let filter = source.isFiltering ? source.compiled() : nil
            let hits: [JSON] = top.dropFirst(from).map { hit in
                var object: JSONObject = [
                    "_index": .string(hit.index), "_id": .string(hit.stored?.id ?? ""), "_score": .null,
                ]
                if source.enabled, let bytes = hit.stored?.source {
                    object["_source"] = filter?.apply(stored: bytes) ?? (try? JSON.parse(bytes)) ?? .object([:])
                }
                if !sort.isEmpty {
                    object["sort"] = .array(
                        hit.values.map { value in
                            switch value {
                            case .int(let number)?: .int(number)
                            case .double(let number)?: .double(number)
                            case .string(let text)?: .string(text)
                            case .ip(let address)?: .string(address.description)
                            case nil: .null
                            }
                        }
                    )
                }
                return .object(object)
            }
            object["hits"] = [
                "total": ["value": .int(Int64(count)), "relation": "eq"], "max_score": .null, "hits": .array(hits),
            ]
        case .composite(let sources, let size, _):
            let keys = tupleBuckets.keys.sorted { Self.compare($0, $1, sources) < 0 }.prefix(size)
            func keyObject(_ key: [SortKey?]) -> JSON {
                var object = JSONObject()
                for (position, source) in sources.enumerated() {
                    object[source.name] = Self.json(
                        key[position],
                        kind: sourceKinds.indices.contains(position) ? sourceKinds[position] : nil
                    )
                }
                return .object(object)
            }
            if let last = keys.last { object["after_key"] = keyObject(last) }
            object["buckets"] = .array(
                try keys.map { key in
                    var rendered = try render(tupleBuckets[key]!)
                    rendered["key"] = keyObject(key)
                    return .object(reorder(rendered, first: ["key", "doc_count"]))
                }
            )
        case .multiTerms(_, let size, let order, let minDocCount):
            let kept = tupleBuckets.filter { $0.value.documents >= max(minDocCount, 1) }
            let sorted = kept.sorted { a, b in
                for (key, ascending) in order {
                    let result: Int
                    switch key {
                    case "_count":
                        result =
                            a.value.documents == b.value.documents
                            ? 0 : (a.value.documents < b.value.documents ? -1 : 1)
                    case "_key", "_term":
                        result =
                            a.key.lexicographicallyPrecedes(b.key, by: Self.keyPrecedes)
                            ? -1 : (b.key.lexicographicallyPrecedes(a.key, by: Self.keyPrecedes) ? 1 : 0)
                    default: result = compare(a.value, b.value, bySubAggregation: key)
                    }
                    if result != 0 { return ascending ? result < 0 : result > 0 }
                }
                return false
            }
            object["doc_count_error_upper_bound"] = 0
            object["sum_other_doc_count"] = .int(Int64(sorted.dropFirst(size).reduce(0) { $0 + $1.value.documents }))
            object["buckets"] = .array(
                try sorted.prefix(size).map { key, bucket in
                    var rendered = try render(bucket)
                    let parts = key.enumerated().map {
                        Self.json($1, kind: sourceKinds.indices.contains($0) ? sourceKinds[$0] : nil)
                    }
                    rendered["key"] = .array(parts)
                    rendered["key_as_string"] = .string(
                        zip(parts, key).enumerated().map { position, pair in
                            if sourceKinds.indices.contains(position), sourceKinds[position] == .date,
                                case .int(let millis)? = pair.1
                            {
                                return ISO8601.format(millis)
                            }
                            return pair.0.stringValue ?? pair.0.serialized()
                        }.joined(separator: "|")
                    )
                    return .object(reorder(rendered, first: ["key", "key_as_string", "doc_count"]))
                }
            )
        case .bucketSort:
            break
        case .filter, .missing:
            object = try render(fixed[0])
        case .filters(let filters, let keyed, let other):
            var list: [(String, JSON)] = try zip(filters, fixed).map { ($0.key, .object(try render($1))) }
            if let other { list.append((other, .object(try render(fixed[filters.count])))) }
            object["buckets"] = keyed ? Self.object(list) : .array(list.map(\.1))
        }
        if case .array(let rendered)? = object["buckets"] { object["buckets"] = .array(sortedByPipelines(rendered)) }
        if let meta = request.meta { object["meta"] = meta }
        return .object(object)
    }

    private func renderMetric(_ metric: AggregationRequest.Metric) -> JSONObject {
        let isDate = valueKind == .date
        func value(_ number: Double?) -> JSONObject {
            var object: JSONObject = ["value": number.map { .double($0) } ?? .null]
            if isDate, let number {
                object["value_as_string"] = .string(
                    AggregationRequest.DateRounding.string(Int64(number), format: fieldFormat, zone: nil)
                )
            }
            return object
        }
        switch metric {
        case .min: return value(minimum)
        case .max: return value(maximum)
        case .avg: return ["value": count > 0 ? .double(sum / Double(count)) : .null]
        case .sum: return ["value": .double(sum)]
        case .valueCount: return ["value": .int(Int64(count))]
        case .cardinality: return ["value": .int(Int64(distinct.count))]
        case .extendedStats:
            var object = renderMetric(.stats)
            guard count > 0 else {
                for key in [
                    "sum_of_squares", "variance", "variance_population", "variance_sampling", "std_deviation",
                    "std_deviation_population", "std_deviation_sampling",
                ] {
                    object[key] = .null
                }
                object["std_deviation_bounds"] = [
                    "upper": .null, "lower": .null, "upper_population": .null, "lower_population": .null,
                    "upper_sampling": .null, "lower_sampling": .null,
                ]
                return object
            }
            let mean = sum / Double(count)
            let population = max(0, sumOfSquares / Double(count) - mean * mean)
            let sampling = count > 1 ? population * Double(count) / Double(count - 1) : .nan
            let deviation = population.squareRoot()
            let samplingDeviation = sampling.squareRoot()
            object["sum_of_squares"] = .double(sumOfSquares)
            object["variance"] = .double(population)
            object["variance_population"] = .double(population)
            object["variance_sampling"] = sampling.isFinite ? .double(sampling) : .null
            object["std_deviation"] = .double(deviation)
            object["std_deviation_population"] = .double(deviation)
            object["std_deviation_sampling"] = samplingDeviation.isFinite ? .double(samplingDeviation) : .null
            object["std_deviation_bounds"] = [
                "upper": .double(mean + 2 * deviation), "lower": .double(mean - 2 * deviation),
                "upper_population": .double(mean + 2 * deviation), "lower_population": .double(mean - 2 * deviation),
                "upper_sampling": samplingDeviation.isFinite ? .double(mean + 2 * samplingDeviation) : .null,
                "lower_sampling": samplingDeviation.isFinite ? .double(mean - 2 * samplingDeviation) : .null,
            ]
            return object
        case .stats:
            return [
                "count": .int(Int64(count)), "min": minimum.map { .double($0) } ?? .null,
                "max": maximum.map { .double($0) } ?? .null,
                "avg": count > 0 ? .double(sum / Double(count)) : .null, "sum": .double(sum),
            ]
        }
    }

    /// The single value a bucket is ordered by: its count, its key, or a metric sub-aggregation (`name` or
    /// `name.stat`).
    private func compare(_ a: (key: SortKey, value: Bucket), _ b: (key: SortKey, value: Bucket), by key: String) -> Int
    {
        switch key {
        case "_count":
            return a.value.documents == b.value.documents ? 0 : (a.value.documents < b.value.documents ? -1 : 1)
        case "_key", "_term": return a.key == b.key ? 0 : (a.key < b.key ? -1 : 1)
        default: return compare(a.value, b.value, bySubAggregation: key)
        }
    }

    private func compare(_ a: Bucket, _ b: Bucket, bySubAggregation path: String) -> Int {
        let left = orderValue(a, path) ?? -.infinity
        let right = orderValue(b, path) ?? -.infinity
        return left == right ? 0 : (left < right ? -1 : 1)
    }

    private func orderValue(_ bucket: Bucket, _ path: String) -> Double? {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        guard let sub = bucket.subs.first(where: { $0.request.name == parts[0] }) else { return nil }
        guard let rendered = try? sub.render() else { return nil }
        if case .filter = sub.request.kind { return rendered["doc_count"]?.doubleValue }
        return rendered[parts.count > 1 ? parts[1] : "value"]?.doubleValue
    }

    private func render(key: SortKey, _ bucket: Bucket) throws -> JSON {
        var rendered = try render(bucket)
        switch key {
        case .string(let text): rendered["key"] = .string(text)
        case .ip(let address): rendered["key"] = .string(address.description)
        case .double(let number): rendered["key"] = .double(number)
        case .int(let number):
            rendered["key"] = valueKind == .floating ? .double(Double(number)) : .int(number)
            if valueKind == .date {
                rendered["key_as_string"] = .string(
                    AggregationRequest.DateRounding.string(number, format: fieldFormat, zone: nil)
                )
            }
            if valueKind == .boolean { rendered["key_as_string"] = .string(number != 0 ? "true" : "false") }
        }
        return .object(reorder(rendered, first: ["key", "key_as_string", "doc_count"]))
    }

    private func render(_ bucket: Bucket) throws -> JSONObject {
        var object: JSONObject = ["doc_count": .int(Int64(bucket.documents))]
        for sub in bucket.subs {
            if case .bucketSort = sub.request.kind { continue }
            object[sub.request.name] = try sub.render()
        }
        return object
    }

    /// The buckets as this aggregation's `bucket_sort` sub-aggregations leave them: sorted by their paths (a bucket
    /// without a value for one is dropped under the default gap policy, `skip`), then `from` and `size`.
    private func sortedByPipelines(_ rendered: [JSON]) -> [JSON] {
        var result = rendered
        for sub in request.subAggregations {
            guard case .bucketSort(let sort, let from, let size, let skipGaps) = sub.kind else { continue }
            func value(_ bucket: JSON, _ path: String) -> JSON? {
                switch path {
                case "_key": return bucket["key"]
                case "_count": return bucket["doc_count"]
                default:
                    let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
                    guard let sub = bucket[parts[0]] else { return nil }
                    let found = parts.count > 1 ? sub[parts[1]] : (sub["value"] ?? sub["doc_count"])
                    return found?.isNull == false ? found : nil
                }
            }
            if !sort.isEmpty {
                if skipGaps { result = result.filter { bucket in sort.allSatisfy { value(bucket, $0.path) != nil } } }
                result = result.enumerated().sorted { a, b in
                    for (path, ascending) in sort {
                        let order = Self.compare(value(a.element, path), value(b.element, path))
                        if order != 0 { return ascending ? order < 0 : order > 0 }
                    }
                    return a.offset < b.offset
                }.map(\.element)
            }
            result = Array(result.dropFirst(from).prefix(size ?? Int.max))
        }
        return result
    }

    /// Order between two JSON values a bucket is sorted by: numbers by value, otherwise text; a missing one first.
    private static func compare(_ a: JSON?, _ b: JSON?) -> Int {
        switch (a, b) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case (let x?, let y?):
            if let left = x.doubleValue, let right = y.doubleValue {
                return left == right ? 0 : (left < right ? -1 : 1)
            }
            let left = x.stringValue ?? x.serialized()
            let right = y.stringValue ?? y.serialized()
            return left == right ? 0 : (left < right ? -1 : 1)
        }
    }

    /// A key of a composite source or multi_terms field as Elasticsearch writes it.
    private static func json(_ key: SortKey?, kind: AggregationValueKind?) -> JSON {
        switch key {
        case nil: return .null
        case .string(let text)?: return .string(text)
        case .ip(let address)?: return .string(address.description)
        case .double(let number)?: return .double(number)
        case .int(let number)?:
            switch kind {
            case .boolean?: return .bool(number != 0)
            case .floating?: return .double(Double(number))
            default: return .int(number)
            }
        }
    }

    static func object(_ members: [(String, JSON)]) -> JSON {
        var object = JSONObject()
        for (key, value) in members { object[key] = value }
        return .object(object)
    }

    /// `object` with `first` keys in front, as Elasticsearch writes buckets.
    private func reorder(_ object: JSONObject, first: [String]) -> JSONObject {
        var result = JSONObject()
        for key in first { if let value = object[key] { result[key] = value } }
        for (key, value) in object where !first.contains(key) { result[key] = value }
        return result
    }
}

extension AggregationCollector.Bucket {
    func add(_ doc: Int, _ context: AggregationContext) throws {
        documents += 1
        for sub in subs { try sub.collect(doc, context) }
    }
}

extension AggregationRequest {
    /// The type name Elasticsearch's messages use.
    var kindName: String {
        switch kind {
        case .terms: "terms"
        case .metric(let metric, _, _): metric.rawValue
        case .dateHistogram: "date_histogram"
        case .histogram: "histogram"
        case .range: "range"
        case .dateRange: "date_range"
        case .ipRange: "ip_range"
        case .filter: "filter"
        case .topHits: "top_hits"
        case .percentiles: "percentiles"
        case .filters: "filters"
        case .missing: "missing"
        case .composite: "composite"
        case .multiTerms: "multi_terms"
        case .bucketSort: "bucket_sort"
        }
    }
}
