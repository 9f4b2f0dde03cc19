/// An ordered JSON object: members keep the order they were written in, as Elasticsearch shows them.
///
/// Hand-written rather than `OrderedDictionary` because most objects in documents and queries are small, where a
/// linear scan beats hashing, and one array of members costs one allocation; large objects get a hash index.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Member = (key: String, value: JSON)

    private var members: [Member] = []
    private var index: [String: Int]?

    /// Objects with more members than this keep a hash index.
    private static let indexThreshold = 12

    public init() {}

    public init(dictionaryLiteral elements: (String, JSON)...) {
        for (key, value) in elements { self[key] = value }
    }

    /// An object from members with distinct keys (the parser checks them).
    init(uniqueMembers: [Member]) {
        members = uniqueMembers
        if members.count > Self.indexThreshold { rebuildIndex() }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var first: Member? { members.first }
    public var keys: [String] { members.map(\.key) }
    public var values: [JSON] { members.map(\.value) }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return members.firstIndex { $0.key == key }
    }

    private mutating func rebuildIndex() {
        if members.count > Self.indexThreshold {
            var map: [String: Int] = [:]
            map.reserveCapacity(members.count)
            for (offset, member) in members.enumerated() { map[member.key] = offset }
            index = map
        } else {
            index = nil
        }
    }

    public subscript(key: String) -> JSON? {
        get { position(of: key).map { members[$0].value } }
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
            let old = members[offset].value
            members[offset].value = value
            return old
        }
        members.append((key, value))
        if index != nil {
            index![key] = members.count - 1
        } else if members.count > Self.indexThreshold {
            rebuildIndex()
        }
        return nil
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSON? {
        guard let offset = position(of: key) else { return nil }
        let old = members.remove(at: offset).value
        if index != nil { rebuildIndex() }
        return old
    }

    public func makeIterator() -> IndexingIterator<[Member]> {
        members.makeIterator()
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.members.count == b.members.count
            && zip(a.members, b.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(members.count)
        for member in members {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }
}
