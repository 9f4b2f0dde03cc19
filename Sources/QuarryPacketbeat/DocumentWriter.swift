public import QuarryCore

/// One finished document: its JSON bytes, ready to write as NDJSON or to store, and its time (for the daily index)
/// without parsing the bytes again.
public struct PacketbeatDocument: Sendable {
    public var bytes: [UInt8]
    /// `@timestamp`, nanoseconds since the epoch.
    public var timestamp: Int64
    /// The `_id` to store it under: derived from what the document describes (see ``DocumentID``), so that the same
    /// packets ingested twice give the same ids; nil lets the store assign one.
    public var id: String?

    public init(bytes: [UInt8], timestamp: Int64, id: String? = nil) {
        self.bytes = bytes
        self.timestamp = timestamp
        self.id = id
    }

    /// The document as a JSON tree (for the store and for tests).
    public var json: JSON {
        (try? JSON.parse(bytes)) ?? .null
    }

    /// `packetbeat-<version>-YYYY.MM.DD` for the document's day.
    public var dailyIndex: String {
        PacketbeatIndex.name(forTimestamp: String(timestampText(timestamp).prefix(10)))
    }
}

/// Writes a JSON document field by field straight into bytes: building a tree of ``QuarryCore/JSON`` values for every
/// document and serializing it afterwards cost more than decoding the packets.
///
/// Hand-written because no package writes JSON incrementally without an intermediate model.
struct DocumentWriter {
    private(set) var bytes: [UInt8] = []
    /// Whether the object or array being written already has a member (one bit per level).
    private var hasMember: UInt64 = 0
    private var depth = 0

    init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    private mutating func separator() {
        let bit: UInt64 = 1 << UInt64(depth)
        if hasMember & bit != 0 { bytes.append(UInt8(ascii: ",")) }
        hasMember |= bit
    }

    private mutating func key(_ name: StaticString) {
        let bit: UInt64 = 1 << UInt64(depth)
        let comma = hasMember & bit != 0
        hasMember |= bit
        let count = name.utf8CodeUnitCount
        // One append for `,"name":`, not one per byte.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count + 4) { buffer in
            var index = 0
            if comma {
                buffer[0] = UInt8(ascii: ",")
                index = 1
            }
            buffer[index] = UInt8(ascii: "\"")
            for offset in 0..<count { buffer[index + 1 + offset] = name.utf8Start[offset] }
            buffer[index + 1 + count] = UInt8(ascii: "\"")
            buffer[index + 2 + count] = UInt8(ascii: ":")
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<(index + 3 + count)]))
        }
    }

    mutating func begin() {
        bytes.append(UInt8(ascii: "{"))
        depth += 1
        hasMember &= ~(1 << UInt64(depth))
    }

    mutating func end() {
        depth -= 1
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func object(_ name: StaticString, _ body: (inout DocumentWriter) -> Void) {
        key(name)
        begin()
        body(&self)
        end()
    }

    mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        JSON.writeString(value, to: &bytes)
    }

    mutating func literal(_ name: StaticString, _ value: StaticString) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func int(_ name: StaticString, _ value: Int64) {
        key(name)
        appendInteger(value)
    }

    mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: value ? [0x74, 0x72, 0x75, 0x65] : [0x66, 0x61, 0x6C, 0x73, 0x65])
    }

    mutating func strings(_ name: StaticString, _ values: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSON.writeString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func integers(_ name: StaticString, _ values: [Int64]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            appendInteger(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// An array of objects, each written by `body`.
    mutating func objects<T>(_ name: StaticString, _ items: [T], _ body: (inout DocumentWriter, T) -> Void) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        depth += 1
        hasMember &= ~(1 << UInt64(depth))
        for item in items {
            separator()
            bytes.append(UInt8(ascii: "{"))
            depth += 1
            hasMember &= ~(1 << UInt64(depth))
            body(&self, item)
            depth -= 1
            bytes.append(UInt8(ascii: "}"))
        }
        depth -= 1
        bytes.append(UInt8(ascii: "]"))
    }

    private mutating func appendInteger(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
        }
        withUnsafeBytes(of: &digits) { buffer in
            for position in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[position]) }
        }
    }
}
