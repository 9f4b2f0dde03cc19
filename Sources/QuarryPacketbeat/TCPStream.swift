/// One direction of a TCP connection, put back in order: retransmitted bytes are dropped, segments that arrive early
/// wait for the gap to fill, and DNS messages (each prefixed by its 2-byte length, RFC 1035 §4.2.2) are cut from the
/// ordered bytes however they were split into segments.
struct TCPStream {
    private var nextSequence: UInt32?
    private var pending: [UInt32: [UInt8]] = [:]
    private var pendingBytes = 0
    private var data: [UInt8] = []
    private var consumed = 0

    /// The most out-of-order bytes kept per direction; past it the gap is given up on.
    static let maximumPendingBytes = 1 << 20

    enum Event {
        case message([UInt8])
        case zeroLength
    }

    /// Adds a segment; returns the complete messages it made available.
    mutating func add(sequence: UInt32, payload: UnsafeBufferPointer<UInt8>, syn: Bool) -> [Event] {
        if syn {
            nextSequence = sequence &+ 1
            if payload.isEmpty { return [] }
        }
        guard !payload.isEmpty else { return [] }
        var sequence = syn ? sequence &+ 1 : sequence
        if nextSequence == nil { nextSequence = sequence }
        guard let expected = nextSequence else { return [] }
        var bytes = payload[...]
        let distance = Int32(bitPattern: sequence &- expected)
        if distance < 0 {
            // A retransmission, or a segment overlapping what was already delivered.
            let overlap = Int(-Int64(distance))
            guard overlap < bytes.count else { return [] }
            bytes = bytes.dropFirst(overlap)
            sequence = expected
        } else if distance > 0 {
            if pending[sequence] == nil, pendingBytes + bytes.count <= Self.maximumPendingBytes {
                pending[sequence] = Array(bytes)
                pendingBytes += bytes.count
            }
            return []
        }
        data.append(contentsOf: bytes)
        nextSequence = sequence &+ UInt32(bytes.count)
        // Segments that were waiting for this one.
        while let next = nextSequence, let waiting = pending.removeValue(forKey: next) {
            pendingBytes -= waiting.count
            data.append(contentsOf: waiting)
            nextSequence = next &+ UInt32(waiting.count)
        }
        // Later segments that overlap the new end.
        if !pending.isEmpty, let next = nextSequence {
            for (start, waiting) in pending where Int32(bitPattern: start &- next) < 0 {
                pending[start] = nil
                pendingBytes -= waiting.count
                let overlap = Int(Int32(bitPattern: next &- start))
                if overlap < waiting.count {
                    data.append(contentsOf: waiting[overlap...])
                    nextSequence = next &+ UInt32(waiting.count - overlap)
                }
            }
        }
        return messages()
    }

    private mutating func messages() -> [Event] {
        var events: [Event] = []
        while data.count - consumed >= 2 {
            let length = Int(data[consumed]) << 8 | Int(data[consumed + 1])
            if length == 0 {
                events.append(.zeroLength)
                consumed += 2
                continue
            }
            guard data.count - consumed >= 2 + length else { break }
            events.append(.message(Array(data[(consumed + 2)..<(consumed + 2 + length)])))
            consumed += 2 + length
        }
        if consumed > 0 && consumed * 2 >= data.count {
            data.removeFirst(consumed)
            consumed = 0
        }
        return events
    }

    /// Bytes received that do not (yet) make a whole message.
    var incompleteBytes: Int { data.count - consumed + pendingBytes }
}
