/// The mapping types the embedded store indexes, by their Elasticsearch names.
public enum FieldType: String, Sendable, Hashable, CaseIterable {
    case keyword, text, long, integer, short, byte, double, float, boolean, date, ip, object
    case halfFloat = "half_float"
    case scaledFloat = "scaled_float"
    case unsignedLong = "unsigned_long"
    case dateNanos = "date_nanos"
    case constantKeyword = "constant_keyword"
    case wildcard
    case matchOnlyText = "match_only_text"
    case nested, flattened
    /// Types ES knows that Quarry keeps in `_source` and the mapping but does not index.
    case geoPoint = "geo_point"
    case binary, alias
    case integerRange = "integer_range"
    case geoShape = "geo_shape"

    /// How values of this type are indexed and compared.
    enum Family {
        case keyword, text, integer, floating, boolean, date, ip, object, unindexed
    }

    var family: Family {
        switch self {
        case .keyword, .constantKeyword, .wildcard, .flattened: .keyword
        case .text, .matchOnlyText: .text
        case .long, .integer, .short, .byte, .unsignedLong: .integer
        case .double, .float, .halfFloat, .scaledFloat: .floating
        case .boolean: .boolean
        case .date, .dateNanos: .date
        case .ip: .ip
        case .object, .nested: .object
        case .geoPoint, .binary, .alias, .integerRange, .geoShape: .unindexed
        }
    }

    /// The inclusive bounds of an integer type, for ES's out-of-range errors.
    var integerBounds: ClosedRange<Int64>? {
        switch self {
        case .byte: -128...127
        case .short: -32768...32767
        case .integer: Int64(Int32.min)...Int64(Int32.max)
        case .long, .unsignedLong: Int64.min...Int64.max
        default: nil
        }
    }
}
