import Foundation
import QuarryCore

/// One aggregation of a search body (`aggs`), parsed: its kind with its parameters, its sub-aggregations and `meta`.
///
/// Aggregations run in the store's one process over every matching document of every index, so they are exact:
/// `terms` reports `doc_count_error_upper_bound: 0` and the true `sum_other_doc_count`, and `cardinality` counts
/// distinct values exactly.
public struct AggregationRequest: Sendable {
    public var name: String
    var kind: Kind
    var subAggregations: [AggregationRequest]
    var meta: JSON?

    enum Kind: Sendable {
        case terms(
            field: String,
            size: Int,
            order: [(key: String, ascending: Bool)],
            minDocCount: Int,
            missing: JSON?,
            filter: TermFilter
        )
        /// Date ranges as written (date math such as `now-1d/d`, dates, or milliseconds), resolved when the search runs.
        case dateRange(
            field: String,
            ranges: [(key: String?, from: JSON?, to: JSON?)],
            keyed: Bool,
            zone: TimeZone?,
            format: DateFormat?
        )
        case metric(Metric, field: String, missing: JSON?)
        case dateHistogram(field: String, rounding: DateRounding, minDocCount: Int, bounds: DateBounds)
        case histogram(field: String, interval: Double, minDocCount: Int, offset: Double)
        case range(field: String, ranges: [(key: String?, from: Double?, to: Double?)], keyed: Bool)
        /// Address ranges: `from` included, `to` excluded, as Elasticsearch's `ip_range`; a `mask` is its block.
        case ipRange(field: String, ranges: [(key: String, from: IPAddress?, to: IPAddress?)], keyed: Bool)
        case filter(Query)
        /// The best documents of the bucket: `from` + `size` by `sort` (index order without one), with their source.
        case topHits(from: Int, size: Int, sort: [SortField], source: SourceFilter)
        /// Exact percentiles (linear interpolation between ranks) of every value, where Elasticsearch estimates them
        /// with a t-digest.
        case percentiles(field: String, percents: [Double], keyed: Bool, missing: JSON?)
        case filters([(key: String, query: Query)], keyed: Bool, otherBucket: String?)
        case missing(field: String)
        /// Buckets of every combination of its sources' values, in key order, a page of `size` after `after`.
        case composite(sources: [CompositeSource], size: Int, after: JSONObject?)
        /// Buckets of every combination of several fields' values, ordered and cut as `terms` orders and cuts.
        case multiTerms(
            fields: [(field: String, missing: JSON?)],
            size: Int,
            order: [(key: String, ascending: Bool)],
            minDocCount: Int
        )
        /// Sorts and cuts its parent's buckets once they are made (a pipeline aggregation: it collects nothing).
        case bucketSort(sort: [(path: String, ascending: Bool)], from: Int, size: Int?, skipGaps: Bool)
    }

    /// One source of a `composite` aggregation: a field's values, or their histogram or date histogram buckets.
    struct CompositeSource: Sendable {
        enum Values: Sendable {
            case terms
            case histogram(interval: Double)
            case dateHistogram(DateRounding)
        }

        var name: String
        var field: String
        var values: Values
        var descending: Bool
        /// `missing_bucket`: documents without a value have a bucket (key `null`) instead of none.
        var missingBucket: Bool
    }

    /// A terms aggregation's `include` and `exclude`: exact values, a Lucene regular expression the whole value
    /// matches, or (`include` only) one partition of the terms, hashed as Elasticsearch hashes them so that
    /// `partition` 0 to `num_partitions - 1` page through every term once.
    struct TermFilter: Sendable {
        var include: Matcher?
        var exclude: Matcher?

        enum Matcher: Sendable {
            case values(Set<String>)
            /// A Lucene regular expression, compiled once for every value the aggregation sees.
            case pattern(LuceneRegex)
            case partition(Int, of: Int)

            func matches(_ key: SortKey) -> Bool {
                switch self {
                case .values(let values): values.contains(AggregationCollector.text(key))
                case .pattern(let regex): regex.matches(AggregationCollector.text(key))
                case .partition(let partition, let count): Self.partition(of: key, count: count) == partition
                }
            }

            init?(_ json: JSON?, name: String, allowPartitions: Bool) throws(StoreError) {
                switch json {
                case nil: return nil
                case .string(let pattern)?:
                    guard let regex = try? LuceneRegex(pattern, caseInsensitive: false) else {
                        throw .illegalArgument("[\(pattern)] is not a valid regular expression in [\(name)]")
                    }
                    self = .pattern(regex)
                case .array(let values)?: self = .values(Set(values.map { $0.stringValue ?? $0.serialized() }))
                case .object(let object)? where allowPartitions:
                    guard let partition = object["partition"]?.intValue, let count = object["num_partitions"]?.intValue
                    else {
                        throw .parsing("Missing [partition] or [num_partitions] in the include of [\(name)]")
                    }
                    guard count > 0, partition >= 0, partition < count else {
                        throw .illegalArgument(
                            "[partition] must be in [0, num_partitions) and [num_partitions] positive in [\(name)], got "
                                + "[\(partition)] of [\(count)]"
                        )
                    }
                    self = .partition(Int(partition), of: Int(count))
                default:
                    throw .illegalArgument("[exclude] of [\(name)] must be a regular expression or an array of values")
                }
            }

            /// The partition a term falls in: murmur3 (x86, 32 bits, seed 31) of its bytes for strings and
            /// addresses, HPPC's 64-bit mix for numbers — Elasticsearch's `IncludeExclude` choices.
            static func partition(of key: SortKey, count: Int) -> Int {
                let hash: Int64
                switch key {
                case .string(let text): hash = Int64(Murmur3.hash32(Array(text.utf8), seed: 31))
                case .ip(let address):
                    var bytes: [UInt8] = []
                    for word in [address.high, address.low] {
                        for shift in stride(from: 56, through: 0, by: -8) {
                            bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
                        }
                    }
                    hash = Int64(Murmur3.hash32(bytes, seed: 31))
                case .int(let number): hash = Murmur3.mix64(number)
                case .double(let number): hash = Murmur3.mix64(Int64(bitPattern: number.bitPattern))
                }
                return Int(hash.floorDivided(by: Int64(count)).remainder)
            }
        }

        func admits(_ key: SortKey) -> Bool {
            (include?.matches(key) ?? true) && !(exclude?.matches(key) ?? false)
        }
    }

    enum Metric: String, Sendable {
        case min, max, avg, sum, stats, cardinality
        case valueCount = "value_count"
        case extendedStats = "extended_stats"
    }

    /// A `date_histogram`'s `extended_bounds` (empty buckets made out to them) and `hard_bounds` (no bucket outside
    /// them), in epoch milliseconds.
    struct DateBounds: Sendable {
        var extended: (Int64, Int64)?
        var hard: (min: Int64?, max: Int64?)?

        func admits(_ key: Int64) -> Bool {
            guard let hard else { return true }
            return (hard.min.map { key >= $0 } ?? true) && (hard.max.map { key <= $0 } ?? true)
        }
    }

    /// How a date histogram cuts time into buckets: an interval, an offset, and the zone whose local time the buckets
    /// follow (Kibana sends the browser's), as Elasticsearch rounds: in local time, keys in UTC milliseconds,
    /// `key_as_string` with the zone's offset.
    struct DateRounding: Sendable {
        var interval: Interval
        var offset: Int64 = 0
        /// Nil for UTC.
        var zone: TimeZone?
        /// `format` of `key_as_string`; ISO 8601 with the zone's offset when nil.
        var format: DateFormat?

        /// `time_zone`: an offset (`+01:00`, `-0800`) or a zone name (`Europe/Berlin`); nil for UTC.
        static func zone(_ text: String) throws(StoreError) -> TimeZone? {
            if ["UTC", "Z", "GMT", "Etc/UTC", "+00:00", "-00:00", "00:00"].contains(text) { return nil }
            if let first = text.first, first == "+" || first == "-" {
                let digits = text.dropFirst().filter { $0 != ":" }
                if let number = Int(digits), digits.count == 2 || digits.count == 4 {
                    let (hours, minutes) = digits.count == 2 ? (number, 0) : (number / 100, number % 100)
                    if hours <= 18, minutes < 60,
                        let zone = TimeZone(secondsFromGMT: (first == "-" ? -1 : 1) * (hours * 3600 + minutes * 60))
                    {
                        return zone
                    }
                }
            } else if let zone = TimeZone(identifier: text) {
                return zone.secondsFromGMT() == 0 && zone.identifier == "GMT" ? nil : zone
            }
            throw .illegalArgument("Unknown time-zone ID: \(text)")
        }

        /// The zone's offset from UTC at `millis`, in milliseconds.
        private func zoneOffset(_ millis: Int64) -> Int64 {
            guard let zone else { return 0 }
            return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(millis) / 1000))) * 1000
        }

        /// Local milliseconds back to UTC: the offset that holds at the instant the local time names.
        private func utc(_ local: Int64) -> Int64 {
            guard zone != nil else { return local }
            let guess = local - zoneOffset(local)
            return local - zoneOffset(guess)
        }

        /// The start (UTC milliseconds) of the bucket holding `millis`.
        func start(_ millis: Int64) -> Int64 {
            utc(Self.utcStart(millis + zoneOffset(millis), interval: interval, offset: offset))
        }

        /// The start of the bucket after the one starting at `start`.
        func next(_ start: Int64) -> Int64 {
            if case .fixed(let size) = interval { return start + size }
            return utc(Self.utcNext(start + zoneOffset(start), interval: interval, offset: offset))
        }

        /// A date as aggregations write it: in `format` in `zone`, or ISO 8601 with the zone's offset (`Z` for UTC).
        static func string(_ millis: Int64, format: DateFormat?, zone: TimeZone?) -> String {
            if let format { return format.format(millis, timeZone: zone) }
            let offset =
                Int64(zone?.secondsFromGMT(for: Date(timeIntervalSince1970: Double(millis) / 1000)) ?? 0) * 1000
            let text = ISO8601.format(millis + offset)
            guard offset != 0 else { return text }
            let minutes = abs(offset) / 60_000
            let sign = offset < 0 ? "-" : "+"
            return String(text.dropLast()) + sign + String(format: "%02d:%02d", minutes / 60, minutes % 60)
        }

        /// Rounding in UTC: calendar units, or fixed intervals from the epoch (plus offset).
        static func utcStart(_ millis: Int64, interval: Interval, offset: Int64) -> Int64 {
            let shifted = millis - offset
            switch interval {
            case .fixed(let size): return shifted.floorDivided(by: size).quotient * size + offset
            case .calendar(let unit):
                let day: Int64 = 86_400_000
                switch unit {
                case .minute: return shifted.floorDivided(by: 60_000).quotient * 60_000 + offset
                case .hour: return shifted.floorDivided(by: 3_600_000).quotient * 3_600_000 + offset
                case .day: return shifted.floorDivided(by: day).quotient * day + offset
                case .weekOfYear:
                    // 1970-01-01 was a Thursday: weeks start on Monday, three days earlier.
                    let days = shifted.floorDivided(by: day).quotient
                    return (days - (days + 3).floorDivided(by: 7).remainder) * day + offset
                default:
                    let days = shifted.floorDivided(by: day).quotient
                    var (year, month, _) = ISO8601.civilFromDays(Int(days))
                    if unit == .quarter { month = (month - 1) / 3 * 3 + 1 }
                    if unit == .year { month = 1 }
                    return Int64(ISO8601.daysFromCivil(year: year, month: month, day: 1)) * day + offset
                }
            }
        }

        static func utcNext(_ start: Int64, interval: Interval, offset: Int64) -> Int64 {
            switch interval {
            case .fixed(let size): return start + size
            case .calendar(let unit):
                switch unit {
                case .minute: return start + 60_000
                case .hour: return start + 3_600_000
                case .day: return start + 86_400_000
                case .weekOfYear: return start + 7 * 86_400_000
                default:
                    let day: Int64 = 86_400_000
                    let (year, month, _) = ISO8601.civilFromDays(Int((start - offset).floorDivided(by: day).quotient))
                    let months = unit == .month ? 1 : unit == .quarter ? 3 : 12
                    let next = month - 1 + months
                    return Int64(ISO8601.daysFromCivil(year: year + next / 12, month: next % 12 + 1, day: 1)) * day
                        + offset
                }
            }
        }
    }

    /// A `date_histogram` interval: a calendar unit (months and years have their lengths) or a fixed duration.
    enum Interval: Sendable {
        case calendar(Calendar.Component)
        case fixed(Int64)
    }

    /// The aggregations of an `aggs` object.
    static func parseAll(_ json: JSON) throws(StoreError) -> [AggregationRequest] {
        guard case .object(let object) = json else {
            throw .parsing("Expected [START_OBJECT] under [aggs], but got a [\(json.tokenName)] in [aggs]")
        }
        var result: [AggregationRequest] = []
        for (name, body) in object { result.append(try parse(name: name, body)) }
        return result
    }

    static func parse(name: String, _ json: JSON) throws(StoreError) -> AggregationRequest {
        guard case .object(let object) = json else {
            throw .parsing("Expected [START_OBJECT] under [\(name)], but got a [\(json.tokenName)] in [\(name)]")
        }
        var kind: Kind?
        var typeName = ""
        var subs: [AggregationRequest] = []
        var meta: JSON?
        for (key, value) in object {
            switch key {
            case "aggs", "aggregations": subs = try parseAll(value)
            case "meta": meta = value
            default:
                guard kind == nil else {
                    throw .parsing("Found two aggregation type definitions in [\(name)]: [\(typeName)] and [\(key)]")
                }
                kind = try parseKind(key, value, name: name)
                typeName = key
            }
        }
        guard let kind else { throw .parsing("Missing definition for aggregation [\(name)]") }
        return AggregationRequest(name: name, kind: kind, subAggregations: subs, meta: meta)
    }

    /// A bucket order (`{"_count": "desc"}` or a list of them), with the key ascending as the last tiebreak;
    /// `terms`' default (count descending) when absent.
    private static func parseOrder(_ json: JSON?, name: String) throws(StoreError) -> [(key: String, ascending: Bool)] {
        var order: [(key: String, ascending: Bool)] = []
        for item in json.map({ $0.arrayValue ?? [$0] }) ?? [] {
            guard let (key, direction) = item.objectValue?.first, let text = direction.stringValue,
                ["asc", "desc"].contains(text.lowercased())
            else { throw .parsing("[order] must be an object with one key and asc or desc in [\(name)]") }
            order.append((key, text.lowercased() == "asc"))
        }
        return order.isEmpty ? [("_count", false), ("_key", true)] : order + [("_key", true)]
    }

    /// A date histogram's `calendar_interval` or `fixed_interval`, `offset` and `time_zone`.
    private static func parseDateRounding(_ options: JSONObject) throws(StoreError) -> DateRounding {
        let interval: Interval
        if let calendar = options["calendar_interval"]?.stringValue {
            let units: [String: Calendar.Component] = [
                "minute": .minute, "1m": .minute, "hour": .hour, "1h": .hour, "day": .day, "1d": .day,
                "week": .weekOfYear, "1w": .weekOfYear, "month": .month, "1M": .month, "quarter": .quarter,
                "1q": .quarter, "year": .year, "1y": .year,
            ]
            guard let unit = units[calendar] else {
                throw .illegalArgument(
                    "The supplied interval [\(calendar)] could not be parsed as a calendar interval."
                )
            }
            interval = .calendar(unit)
        } else if let fixed = options["fixed_interval"]?.stringValue {
            let milliseconds = try SearchRequest.timeValueMilliseconds(fixed, setting: "date_histogram.fixedInterval")
            guard milliseconds > 0 else { throw .illegalArgument("Zero or negative time interval not supported") }
            interval = .fixed(milliseconds)
        } else {
            throw .illegalArgument("Invalid interval specified, must be non-null and non-empty")
        }
        let offset = try options["offset"]?.stringValue.map { text throws(StoreError) -> Int64 in
            let negative = text.hasPrefix("-")
            let value = try SearchRequest.timeValueMilliseconds(
                String(text.drop { $0 == "+" || $0 == "-" }),
                setting: "offset"
            )
            return negative ? -value : value
        }
        return DateRounding(
            interval: interval,
            offset: offset ?? 0,
            zone: try options["time_zone"].map { json throws(StoreError) in
                try DateRounding.zone(json.stringValue ?? "")
            }
                ?? nil,
            format: try dateFormat(options["format"])
        )
    }

    /// An aggregation's `format` for dates.
    private static func dateFormat(_ json: JSON?) throws(StoreError) -> DateFormat? {
        guard let text = json?.stringValue else { return nil }
        do {
            return try DateFormat(text)
        } catch {
            throw .illegalArgument("Invalid format: [\(text)]: \(error.reason)")
        }
    }

    /// A `composite` aggregation's `sources`, `size` and `after`.
    private static func parseComposite(_ options: JSONObject, name: String) throws(StoreError) -> Kind {
        guard let list = options["sources"]?.arrayValue, !list.isEmpty else {
            throw .illegalArgument("Composite [sources] cannot be null or empty")
        }
        var sources: [CompositeSource] = []
        for item in list {
            guard let (sourceName, definition) = item.objectValue?.first, item.objectValue?.count == 1,
                let (type, body) = definition.objectValue?.first, let parameters = body.objectValue
            else { throw .parsing("[composite] sources must be objects of one named source in [\(name)]") }
            guard let field = parameters["field"]?.stringValue else {
                if parameters["script"] != nil { throw SearchRequest.scriptsDisabled }
                throw .illegalArgument("Required one of fields [field, script], but none were specified. ")
            }
            let values: CompositeSource.Values
            switch type {
            case "terms": values = .terms
            case "histogram":
                guard let interval = parameters["interval"]?.doubleValue, interval > 0 else {
                    throw .illegalArgument("[interval] must be greater than 0 for [histogram] source [\(sourceName)]")
                }
                values = .histogram(interval: interval)
            case "date_histogram":
                values = .dateHistogram(try parseDateRounding(parameters))
            default:
                throw .illegalArgument("[\(type)] sources of a composite aggregation are not supported by this store")
            }
            let order = parameters["order"]?.stringValue?.lowercased() ?? "asc"
            guard order == "asc" || order == "desc" else {
                throw .illegalArgument("Unknown order [\(order)] in source [\(sourceName)]")
            }
            sources.append(
                CompositeSource(
                    name: sourceName,
                    field: field,
                    values: values,
                    descending: order == "desc",
                    missingBucket: parameters["missing_bucket"]?.boolValue ?? false
                )
            )
        }
        let names = sources.map(\.name)
        let duplicates = Set(names.filter { name in names.filter { $0 == name }.count > 1 })
        if !duplicates.isEmpty {
            throw .illegalArgument(
                "Composite source names must be unique, found duplicates: [\(duplicates.sorted().joined(separator: ", "))]"
            )
        }
        let size = options["size"]?.intValue ?? 10
        guard size > 0 else { throw .illegalArgument("[size] must be greater than 0. Found [\(size)] in [\(name)]") }
        guard size <= Int64(AggregationCollector.maximumBuckets) else { throw AggregationCollector.tooManyBuckets() }
        var after: JSONObject?
        if let given = options["after"] {
            guard case .object(let object) = given else { throw .parsing("[after] must be an object in [\(name)]") }
            guard object.count == sources.count else {
                throw .illegalArgument("[after] has \(object.count) value(s) but [sources] has \(sources.count)")
            }
            if let missing = sources.first(where: { object[$0.name] == nil }) {
                throw .illegalArgument("Missing value for [after.\(missing.name)]")
            }
            after = object
        }
        return .composite(sources: sources, size: Int(size), after: after)
    }

    /// `bucket_sort`: `sort` (paths `_key`, `_count`, `agg` or `agg.metric`), `from`, `size`, `gap_policy`.
    private static func parseBucketSort(_ options: JSONObject, name: String) throws(StoreError) -> Kind {
        var sort: [(path: String, ascending: Bool)] = []
        for item in options["sort"].map({ $0.arrayValue ?? [$0] }) ?? [] {
            switch item {
            case .string(let path): sort.append((path, true))
            case .object(let object) where object.count == 1:
                let (path, spec) = object.first!
                let order = (spec.stringValue ?? spec["order"]?.stringValue ?? "asc").lowercased()
                sort.append((path, order != "desc"))
            default: throw .parsing("[bucket_sort] [sort] must name a path and an order in [\(name)]")
            }
        }
        let from = options["from"]?.intValue ?? 0
        let size = options["size"]?.intValue
        guard from >= 0 else { throw .illegalArgument("[from] must be a non-negative integer: [\(from)]") }
        if let size, size <= 0 { throw .illegalArgument("[size] must be a positive integer: [\(size)]") }
        let gapPolicy = options["gap_policy"]?.stringValue ?? "skip"
        guard ["skip", "insert_zeros", "keep_values"].contains(gapPolicy) else {
            throw .illegalArgument("Unknown GapPolicy [\(gapPolicy)]")
        }
        return .bucketSort(sort: sort, from: Int(from), size: size.map { Int($0) }, skipGaps: gapPolicy == "skip")
    }

    private static func parseKind(_ type: String, _ value: JSON, name: String) throws(StoreError) -> Kind {
        guard case .object(let options) = value else {
            throw .parsing("[\(type)] failed to parse: expected an object in [\(name)]")
        }
        func field() throws(StoreError) -> String {
            guard let field = options["field"]?.stringValue else {
                if options["script"] != nil {
                    throw .illegalArgument(
                        "scripts are not supported by this store: aggregation [\(name)] needs a field"
                    )
                }
                throw .illegalArgument("Required one of fields [field, script], but none were specified. ")
            }
            return field
        }
        func integer(_ key: String, default value: Int) throws(StoreError) -> Int {
            guard let json = options[key] else { return value }
            guard let number = json.intValue ?? json.stringValue.flatMap({ Int64($0) }) else {
                throw .parsing("[\(type)] failed to parse field [\(key)]")
            }
            return Int(number)
        }
        switch type {
        case "terms":
            let size = try integer("size", default: 10)
            guard size > 0 else {
                throw .illegalArgument("[size] must be greater than 0. Found [\(size)] in [\(name)]")
            }
            let order = try parseOrder(options["order"], name: name)
            return .terms(
                field: try field(),
                size: size,
                order: order,
                minDocCount: try integer("min_doc_count", default: 1),
                missing: options["missing"],
                filter: TermFilter(
                    include: try .init(options["include"], name: name, allowPartitions: true),
                    exclude: try .init(options["exclude"], name: name, allowPartitions: false)
                )
            )
        case "min", "max", "avg", "sum", "stats", "cardinality", "value_count", "extended_stats":
            // Cardinality is exact at any `precision_threshold` (docs/embedded-store.md), which is still checked.
            if let threshold = options["precision_threshold"]?.intValue, threshold < 0 {
                throw .illegalArgument(
                    "[precisionThreshold] must be greater than or equal to 0. Found [\(threshold)] in [\(name)]"
                )
            }
            return .metric(Metric(rawValue: type)!, field: try field(), missing: options["missing"])
        case "date_histogram":
            let rounding = try parseDateRounding(options)
            var bounds = DateBounds()
            let parse = { (value: JSON?) -> Int64? in
                value?.intValue ?? value?.stringValue.flatMap { Int64($0) ?? ISO8601.parse($0) }
            }
            if let extended = options["extended_bounds"]?.objectValue {
                if let low = parse(extended["min"]), let high = parse(extended["max"]) { bounds.extended = (low, high) }
            }
            if let hard = options["hard_bounds"]?.objectValue {
                bounds.hard = (parse(hard["min"]), parse(hard["max"]))
                if let low = bounds.hard?.min, let high = bounds.hard?.max, low > high {
                    throw .illegalArgument(
                        "[hard_bounds.min][\(low)] cannot be greater than [hard_bounds.max][\(high)]"
                    )
                }
            }
            return .dateHistogram(
                field: try field(),
                rounding: rounding,
                minDocCount: try integer("min_doc_count", default: 0),
                bounds: bounds
            )
        case "histogram":
            guard let interval = options["interval"]?.doubleValue, interval > 0 else {
                throw .illegalArgument("[interval] must be >0 for histogram aggregation [\(name)]")
            }
            return .histogram(
                field: try field(),
                interval: interval,
                minDocCount: try integer("min_doc_count", default: 0),
                offset: options["offset"]?.doubleValue ?? 0
            )
        case "range":
            guard let list = options["ranges"]?.arrayValue, !list.isEmpty else {
                throw .illegalArgument("No [ranges] specified for the [\(name)] aggregation")
            }
            let ranges = list.map { range in
                (range["key"]?.stringValue, range["from"]?.doubleValue, range["to"]?.doubleValue)
            }
            return .range(field: try field(), ranges: ranges, keyed: options["keyed"]?.boolValue ?? false)
        case "date_range":
            guard let list = options["ranges"]?.arrayValue, !list.isEmpty else {
                throw .illegalArgument("No [ranges] specified for the [\(name)] aggregation")
            }
            return .dateRange(
                field: try field(),
                ranges: list.map { ($0["key"]?.stringValue, $0["from"], $0["to"]) },
                keyed: options["keyed"]?.boolValue ?? false,
                zone: try options["time_zone"].map { json throws(StoreError) in
                    try DateRounding.zone(json.stringValue ?? "")
                } ?? nil,
                format: try dateFormat(options["format"])
            )
        case "ip_range":
            guard let list = options["ranges"]?.arrayValue, !list.isEmpty else {
                throw .illegalArgument("No [ranges] specified for the [\(name)] aggregation")
            }
            var ranges: [(String, IPAddress?, IPAddress?)] = []
            for range in list {
                if let mask = range["mask"]?.stringValue {
                    guard let block = IPAddress.cidr(mask) else {
                        throw .illegalArgument("Expected [ip/prefix] but was [\(mask)]")
                    }
                    ranges.append((range["key"]?.stringValue ?? mask, block.lowerBound, block.upperBound.next))
                    continue
                }
                func address(_ key: String) throws(StoreError) -> IPAddress? {
                    guard let text = range[key]?.stringValue else { return nil }
                    guard let address = IPAddress(text) else {
                        throw .illegalArgument("'\(text)' is not an IP string literal.")
                    }
                    return address
                }
                let from = try address("from")
                let to = try address("to")
                let key = range["key"]?.stringValue ?? "\(from?.description ?? "*")-\(to?.description ?? "*")"
                ranges.append((key, from, to))
            }
            return .ipRange(field: try field(), ranges: ranges, keyed: options["keyed"]?.boolValue ?? false)
        case "percentiles":
            let percents = options["percents"]?.arrayValue?.compactMap(\.doubleValue) ?? [1, 5, 25, 50, 75, 95, 99]
            for percent in percents where !(0...100).contains(percent) {
                throw .illegalArgument("percent must be in [0,100], got [\(percent)]: [\(name)]")
            }
            if options["hdr"] != nil { throw .illegalArgument("[hdr] percentiles are not supported by this store yet") }
            return .percentiles(
                field: try field(),
                percents: percents,
                keyed: options["keyed"]?.boolValue ?? true,
                missing: options["missing"]
            )
        case "top_hits":
            let size = try integer("size", default: 3)
            let from = try integer("from", default: 0)
            guard size >= 0, from >= 0 else {
                throw .illegalArgument("[from] and [size] of [\(name)] cannot be negative")
            }
            return .topHits(
                from: from,
                size: size,
                sort: try options["sort"].map { json throws(StoreError) in try SortField.parseList(json) } ?? [],
                source: try options["_source"].map { json throws(StoreError) in try SourceFilter(json: json) }
                    ?? SourceFilter()
            )
        case "filter": return .filter(try Query.parse(value))
        case "filters":
            guard let filters = options["filters"] else {
                throw .illegalArgument("[filters] is required in [\(name)]")
            }
            var named: [(String, Query)] = []
            var keyed = true
            switch filters {
            case .object(let object):
                for (key, query) in object { named.append((key, try Query.parse(query))) }
            case .array(let list):
                keyed = false
                for (position, query) in list.enumerated() { named.append((String(position), try Query.parse(query))) }
            default: throw .parsing("[filters] must be an object or an array in [\(name)]")
            }
            let other =
                options["other_bucket_key"]?.stringValue
                ?? (options["other_bucket"]?.boolValue == true ? "_other_" : nil)
            return .filters(named, keyed: keyed, otherBucket: other)
        case "missing": return .missing(field: try field())
        case "composite": return try parseComposite(options, name: name)
        case "multi_terms":
            guard let list = options["terms"]?.arrayValue, list.count >= 2 else {
                throw .illegalArgument(
                    "The [terms] parameter in the aggregation [\(name)] must be present and have at least 2 fields or scripts."
                )
            }
            var fields: [(field: String, missing: JSON?)] = []
            for item in list {
                guard let field = item["field"]?.stringValue else {
                    if item["script"] != nil { throw SearchRequest.scriptsDisabled }
                    throw .illegalArgument("Required one of fields [field, script], but none were specified. ")
                }
                fields.append((field, item["missing"]))
            }
            let size = try integer("size", default: 10)
            guard size > 0 else {
                throw .illegalArgument("[size] must be greater than 0. Found [\(size)] in [\(name)]")
            }
            return .multiTerms(
                fields: fields,
                size: size,
                order: try parseOrder(options["order"], name: name),
                minDocCount: try integer("min_doc_count", default: 1)
            )
        case "bucket_sort": return try parseBucketSort(options, name: name)
        default:
            throw .illegalArgument("aggregation [\(name)] of type [\(type)] is not supported by this store yet")
        }
    }
}

/// The hash functions Elasticsearch partitions terms with. No listed package has them, hence written here.
enum Murmur3 {
    /// MurmurHash3 x86 32-bit (Austin Appleby's), as Lucene's `StringHelper.murmurhash3_x86_32`.
    static func hash32(_ bytes: [UInt8], seed: UInt32) -> Int32 {
        let c1: UInt32 = 0xcc9e_2d51
        let c2: UInt32 = 0x1b87_3593
        var h = seed
        let blocks = bytes.count / 4
        for block in 0..<blocks {
            let i = block * 4
            var k =
                UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            k = k &* c1
            k = (k << 15) | (k >> 17)
            k = k &* c2
            h ^= k
            h = (h << 13) | (h >> 19)
            h = h &* 5 &+ 0xe654_6b64
        }
        var k: UInt32 = 0
        let tail = blocks * 4
        switch bytes.count & 3 {
        case 3:
            k ^= UInt32(bytes[tail + 2]) << 16
            fallthrough
        case 2:
            k ^= UInt32(bytes[tail + 1]) << 8
            fallthrough
        case 1:
            k ^= UInt32(bytes[tail])
            k = k &* c1
            k = (k << 15) | (k >> 17)
            k = k &* c2
            h ^= k
        default: break
        }
        h ^= UInt32(truncatingIfNeeded: bytes.count)
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return Int32(bitPattern: h)
    }

    /// HPPC's `BitMixer.mix64`.
    static func mix64(_ value: Int64) -> Int64 {
        var z = UInt64(bitPattern: value)
        z = (z ^ (z >> 32)) &* 0x4cd6_944c_5cc2_0b6d
        z = (z ^ (z >> 29)) &* 0xfc12_c5b1_9d32_59e9
        return Int64(bitPattern: z ^ (z >> 32))
    }
}
