/// An ordered JSON object: members keep the order they were written in, as Elasticsearch shows them.
///
/// Hand-written rather than `OrderedDictionary` because most objects in documents and queries are small, where a
/// linear scan beats hashing, and large ones get a hash index built on demand.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSON] = []
    private var index: [String: Int]?

    /// Objects with more members than this keep a hash index.
    private static let indexThreshold = 12

    public init() {}

    public init(dictionaryLiteral elements: (String, JSON)...) {
        for (key, value) in elements { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }
    public var first: (key: String, value: JSON)? { keys.isEmpty ? nil : (keys[0], values[0]) }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return keys.firstIndex(of: key)
    }

    private mutating func rebuildIndex() {
        if keys.count > Self.indexThreshold {
            var map: [String: Int] = [:]
            map.reserveCapacity(keys.count)
            for (offset, key) in keys.enumerated() { map[key] = offset }
            index = map
        } else {
            index = nil
        }
    }

    public subscript(key: String) -> JSON? {
        get { position(of: key).map { values[$0] } }
        set {
            if let newValue {
                updateValue(newValue, forKey: key)
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Sets `value` for `key`, keeping the key's position when it exists; returns the old value.
    @discardableResult
    public mutating func updateValue(_ value: JSON, forKey key: String) -> JSON? {
        if let offset = position(of: key) {
            let old = values[offset]
            values[offset] = value
            return old
        }
        keys.append(key)
        values.append(value)
        if index != nil {
            index![key] = keys.count - 1
        } else if keys.count > Self.indexThreshold {
            rebuildIndex()
        }
        return nil
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSON? {
        guard let offset = position(of: key) else { return nil }
        keys.remove(at: offset)
        let old = values.remove(at: offset)
        if index != nil { rebuildIndex() }
        return old
    }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: JSON)> {
        var offset = 0
        let keys = keys
        let values = values
        return AnyIterator {
            guard offset < keys.count else { return nil }
            defer { offset += 1 }
            return (keys[offset], values[offset])
        }
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.keys == b.keys && a.values == b.values
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(keys)
        hasher.combine(values)
    }
}
