import Foundation
import QuarryCore

extension QueryExecutor {
    // MARK: range

    func range(_ range: RangeQuery) throws -> Bitmap {
        let fields = range.field.contains("*") ? expand([range.field]) : [range.field]
        var union = empty
        for field in fields {
            guard let definition = mappings.field(field) else { continue }
            var query = range
            query.field = field
            switch definition.type.family {
            case .integer, .floating, .date:
                if let bounds = try numericBounds(definition, query) {
                    union.formUnion(try scanNumeric(field: field, bounds))
                }
            case .ip:
                var lower = IPAddress(high: 0, low: 0)
                var upper = IPAddress(high: .max, low: .max)
                func parse(_ value: JSON) throws -> IPAddress {
                    guard let address = IPAddress(text(value)) else {
                        throw queryShardError("'\(text(value))' is not an IP string literal.")
                    }
                    return address
                }
                if let v = query.gte { lower = try parse(v) }
                if let v = query.gt { lower = try parse(v).successor ?? upper }
                if let v = query.lte { upper = try parse(v) }
                if let v = query.lt {
                    guard let p = try parse(v).predecessor else { continue }
                    upper = p
                }
                if lower <= upper { union.formUnion(try scanIP(field: field, lower...upper)) }
            case .keyword, .text, .boolean:
                let lower = (query.gte ?? query.gt).map(text)
                let upper = (query.lte ?? query.lt).map(text)
                for term in try reader.terms(field: field) {
                    if let lower {
                        let cmp = compareBytes(term, lower)
                        if cmp < 0 || (cmp == 0 && query.gt != nil) { continue }
                    }
                    if let upper {
                        let cmp = compareBytes(term, upper)
                        if cmp > 0 || (cmp == 0 && query.lt != nil) { continue }
                    }
                    try reader.addPostings(field: field, term: term, into: &union)
                }
            case .object, .unindexed: continue
            }
        }
        return union
    }

    func compareBytes(_ a: String, _ b: String) -> Int {
        if a == b { return 0 }
        return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
    }

    /// Inclusive numeric bounds of a range on a numeric or date field; `nil` when the range is empty.
    func numericBounds(_ field: FieldDefinition, _ range: RangeQuery) throws -> ClosedRange<Double>? {
        var lower = -Double.infinity
        var upper = Double.infinity
        let isDate = field.type.family == .date
        let isInteger = field.type.family == .integer || isDate
        var timeZone: TimeZone?
        if let zone = range.timeZone {
            guard let parsed = Self.timeZone(zone) else {
                throw queryShardError("The datetime zone id '\(zone)' is not recognised")
            }
            timeZone = parsed
        }
        var format = field.format
        if let custom = range.format {
            do { format = try DateFormat(custom) } catch { throw queryShardError(error.reason) }
        }
        func value(_ json: JSON, roundUp: Bool) throws -> Double {
            if isDate {
                if case .int(let number) = json, range.format == nil { return Double(number) }
                if case .double(let number) = json, range.format == nil { return number.rounded(.down) }
                do {
                    let millis = try DateMath.resolve(
                        text(json),
                        format: format,
                        timeZone: timeZone,
                        now: now,
                        roundUp: roundUp
                    )
                    return Double(millis)
                } catch {
                    throw StoreError(
                        type: "parse_exception",
                        reason: error.reason,
                        status: 400,
                        causedBy: .illegalArgument(error.reason)
                    )
                }
            }
            switch json {
            case .int(let number): return Double(number)
            case .double(let number): return number
            case .string(let string):
                guard let number = Double(string.trimmingSpaces), !number.isNaN else {
                    throw queryShardError("For input string: \"\(string)\"")
                }
                return number
            default: throw queryShardError("For input string: \"\(text(json))\"")
            }
        }
        if let v = range.gte { lower = max(lower, try value(v, roundUp: false)) }
        if let v = range.gt {
            let bound = try value(v, roundUp: true)
            lower = max(lower, isInteger ? (bound + 1).rounded(.down) : bound.nextUp)
        }
        if let v = range.lte { upper = min(upper, try value(v, roundUp: true)) }
        if let v = range.lt {
            let bound = try value(v, roundUp: false)
            upper = min(upper, isInteger ? (bound - 1).rounded(.up) : bound.nextDown)
        }
        if isInteger {
            lower = lower.rounded(.up)
            upper = upper.rounded(.down)
        }
        guard lower <= upper else { return nil }
        return lower...upper
    }

    static func timeZone(_ text: String) -> TimeZone? {
        if text == "Z" || text == "UTC" { return .gmt }
        if text.hasPrefix("+") || text.hasPrefix("-") {
            let sign = text.hasPrefix("-") ? -1 : 1
            let digits = text.dropFirst().replacingOccurrences(of: ":", with: "")
            guard let value = Int(digits) else { return nil }
            let (hours, minutes) = digits.count <= 2 ? (value, 0) : (value / 100, value % 100)
            return TimeZone(secondsFromGMT: sign * (hours * 3600 + minutes * 60))
        }
        return TimeZone(identifier: text)
    }

    /// Documents with a value of `field` inside `bounds`, skipping segments outside and taking segments inside
    /// whole.
    func scanNumeric(field: String, _ bounds: ClosedRange<Double>) throws -> Bitmap {
        var bitmap = empty
        for segment in reader.segments(field: field) {
            if let stored = segment.segment.stored {
                guard let segmentBounds = segment.bounds else { continue }
                if !segmentBounds.overlaps(bounds) { continue }
                if bounds.contains(segmentBounds.lowerBound), bounds.contains(segmentBounds.upperBound),
                    stored.valueDocuments[field] == stored.count
                {
                    // Every document of the segment has a value, and every value is in range.
                    bitmap.insert(range: segment.base..<segment.base + segment.count)
                    continue
                }
            }
            guard let column = try reader.column(field: field, segment: segment.segment) else { continue }
            let base = segment.base
            switch column.kind {
            case .int:
                let lo = Int64.clamping(bounds.lowerBound, rounding: .up)
                let hi = Int64.clamping(bounds.upperBound, rounding: .down)
                column.ints.withUnsafeBufferPointer { values in
                    column.offsets.withUnsafeBufferPointer { offsets in
                        for doc in 0..<(offsets.count - 1) {
                            var i = Int(offsets[doc])
                            let end = Int(offsets[doc + 1])
                            while i < end {
                                if values[i] >= lo && values[i] <= hi {
                                    bitmap.insert(base + doc)
                                    break
                                }
                                i += 1
                            }
                        }
                    }
                }
            case .double:
                for doc in 0..<column.documentCount
                where column.doubles[column.range(doc)].contains(where: bounds.contains) {
                    bitmap.insert(base + doc)
                }
            default: continue
            }
        }
        return bitmap
    }

    func scanIP(field: String, _ range: ClosedRange<IPAddress>) throws -> Bitmap {
        var bitmap = empty
        for segment in reader.segments(field: field) {
            guard let column = try reader.column(field: field, segment: segment.segment), column.kind == .ip else {
                continue
            }
            for doc in 0..<column.documentCount where column.ips[column.range(doc)].contains(where: range.contains) {
                bitmap.insert(segment.base + doc)
            }
        }
        return bitmap
    }
}
