/// A JSON value as Elasticsearch sees it: integers stay integers (a `long` never passes through `Double`),
/// and object keys keep the order they were written in, because `_source`, mappings and responses are compared by
/// people and by tests in that order.
///
/// ```swift
/// let doc = try JSON.parse(#"{"dns":{"question":{"name":"example.com"}}}"#)
/// doc["dns"]?["question"]?["name"]?.stringValue  // "example.com"
/// ```
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)
}

extension JSON {
    /// The member `key` of an object, or `nil` for anything else.
    public subscript(key: String) -> JSON? {
        get {
            if case .object(let object) = self { return object[key] }
            return nil
        }
        set {
            guard case .object(var object) = self else { return }
            object[key] = newValue
            self = .object(object)
        }
    }

    /// The element `index` of an array, or `nil`.
    public subscript(index: Int) -> JSON? {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return nil
    }

    /// Follows a dotted path (`"hits.total.value"`); numeric segments index arrays.
    public func value(atPath path: String) -> JSON? {
        var current: JSON? = self
        for segment in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let value = current else { return nil }
            switch value {
            case .object(let object): current = object[String(segment)]
            case .array(let array):
                guard let index = Int(segment), array.indices.contains(index) else { return nil }
                current = array[index]
            default: return nil
            }
        }
        return current
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    /// The value as an integer when it is one exactly (`3`, `3.0`).
    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9.2e18: return Int64(value)
        default: return nil
        }
    }

    /// The value as a double for any JSON number.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let array) = self { return array }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Whether this is an object or an array.
    public var isContainer: Bool {
        switch self {
        case .array, .object: true
        default: false
        }
    }

    /// The name Elasticsearch's parser gives this kind of token (`VALUE_STRING`, `START_OBJECT`, …), used in
    /// error messages that must read like ES's own.
    public var tokenName: String {
        switch self {
        case .null: "VALUE_NULL"
        case .bool(let value): value ? "VALUE_TRUE" : "VALUE_FALSE"
        case .int, .double: "VALUE_NUMBER"
        case .string: "VALUE_STRING"
        case .array: "START_ARRAY"
        case .object: "START_OBJECT"
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSON: CustomStringConvertible {
    public var description: String { serialized() }
}

extension JSON {
    /// The value with `transform` applied to every string in it (object keys stay as they are).
    public func mapStrings(_ transform: (String) -> String) -> JSON {
        switch self {
        case .string(let text): return .string(transform(text))
        case .array(let items): return .array(items.map { $0.mapStrings(transform) })
        case .object(let object):
            var result = JSONObject()
            for (key, value) in object { result[key] = value.mapStrings(transform) }
            return .object(result)
        default: return self
        }
    }
}
