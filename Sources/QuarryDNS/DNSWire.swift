import QuarryCore

/// Bounds-checked reads from a message; every failure names the offset.
struct DNSReader {
    let buffer: UnsafeBufferPointer<UInt8>
    var offset = 0

    init(_ buffer: UnsafeBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    /// The most compression pointers one name may follow; a name has at most 127 labels.
    static let maximumPointers = 127

    @inline(__always)
    func require(_ count: Int, at position: Int) throws(DNSDecodingError) {
        guard count >= 0, position + count <= buffer.count else { throw DNSDecodingError(.truncated, at: position) }
    }

    mutating func uint8() throws(DNSDecodingError) -> UInt8 {
        try require(1, at: offset)
        defer { offset += 1 }
        return buffer[offset]
    }

    mutating func uint16() throws(DNSDecodingError) -> UInt16 {
        try require(2, at: offset)
        defer { offset += 2 }
        return UInt16(buffer[offset]) << 8 | UInt16(buffer[offset + 1])
    }

    mutating func uint32() throws(DNSDecodingError) -> UInt32 {
        try require(4, at: offset)
        defer { offset += 4 }
        return UInt32(buffer[offset]) << 24 | UInt32(buffer[offset + 1]) << 16 | UInt32(buffer[offset + 2]) << 8
            | UInt32(buffer[offset + 3])
    }

    mutating func bytes(_ count: Int) throws(DNSDecodingError) -> [UInt8] {
        try require(count, at: offset)
        defer { offset += count }
        return Array(buffer[offset..<offset + count])
    }

    /// A `<character-string>`: a length byte and that many bytes.
    mutating func characterString() throws(DNSDecodingError) -> [UInt8] {
        let length = Int(try uint8())
        return try bytes(length)
    }

    /// A possibly compressed name. Pointers must point strictly before the name that uses them, which rules out
    /// loops; the expanded name may not exceed 255 bytes.
    mutating func name() throws(DNSDecodingError) -> DNSName {
        var wire: [UInt8] = []
        var position = offset
        var end: Int?
        var pointers = 0
        var lowestTarget = offset
        while true {
            try require(1, at: position)
            let length = buffer[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    wire.append(0)
                    offset = end ?? position + 1
                    return DNSName(wire: wire)
                }
                try require(Int(length) + 1, at: position)
                guard wire.count + Int(length) + 2 <= 255 else { throw DNSDecodingError(.nameTooLong, at: position) }
                wire.append(contentsOf: buffer[position..<position + 1 + Int(length)])
                position += 1 + Int(length)
            case 0xC0:
                try require(2, at: position)
                let target = Int(length & 0x3F) << 8 | Int(buffer[position + 1])
                // Each pointer must go further back than the last: no loops, however the pointers are arranged.
                guard target < lowestTarget else { throw DNSDecodingError(.badPointer, at: position) }
                pointers += 1
                guard pointers <= Self.maximumPointers else { throw DNSDecodingError(.tooManyPointers, at: position) }
                if end == nil { end = position + 2 }
                lowestTarget = target
                position = target
            default:
                throw DNSDecodingError(.badLabelType, at: position)
            }
        }
    }

    mutating func records(_ count: Int) throws(DNSDecodingError) -> [DNSResourceRecord] {
        var records: [DNSResourceRecord] = []
        records.reserveCapacity(min(count, (buffer.count - offset) / 11 + 1))
        for _ in 0..<count { records.append(try record()) }
        return records
    }

    mutating func record() throws(DNSDecodingError) -> DNSResourceRecord {
        let name = try name()
        let type = DNSType(try uint16())
        let rawClass = try uint16()
        let ttl = try uint32()
        let length = Int(try uint16())
        try require(length, at: offset)
        let start = offset
        let end = offset + length
        let data = try recordData(type: type, end: end)
        guard offset == end else {
            throw DNSDecodingError(offset < end ? .trailingRecordData : .badRecordData, at: start)
        }
        return DNSResourceRecord(name: name, type: type, rawClass: rawClass, ttl: ttl, data: data)
    }

    /// Reads within the record's data: a name or field may not run past `end`.
    private mutating func bounded<T>(
        _ end: Int,
        _ read: (inout DNSReader) throws(DNSDecodingError) -> T
    )
        throws(DNSDecodingError) -> T
    {
        let value = try read(&self)
        guard offset <= end else { throw DNSDecodingError(.badRecordData, at: offset) }
        return value
    }

    private mutating func recordData(type: DNSType, end: Int) throws(DNSDecodingError) -> DNSRecordData {
        let start = offset
        switch type {
        case .a:
            guard end - start == 4 else { throw DNSDecodingError(.badRecordData, at: start) }
            let value = try uint32()
            return .a(IPAddress(ipv4: value))
        case .aaaa:
            guard end - start == 16, let address = IPAddress(bytes: try bytes(16)) else {
                throw DNSDecodingError(.badRecordData, at: start)
            }
            return .aaaa(address)
        case .cname: return .cname(try bounded(end) { reader throws(DNSDecodingError) in try reader.name() })
        case .ns: return .ns(try bounded(end) { reader throws(DNSDecodingError) in try reader.name() })
        case .ptr: return .ptr(try bounded(end) { reader throws(DNSDecodingError) in try reader.name() })
        case .mx:
            let preference = try uint16()
            return .mx(
                preference: preference,
                exchange: try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            )
        case .txt, .spf:
            var strings: [[UInt8]] = []
            while offset < end {
                strings.append(try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() })
            }
            return .txt(strings)
        case .soa:
            let primary = try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            let mailbox = try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            guard end - offset == 20 else { throw DNSDecodingError(.badRecordData, at: offset) }
            return .soa(
                .init(
                    primary: primary,
                    mailbox: mailbox,
                    serial: try uint32(),
                    refresh: try uint32(),
                    retry: try uint32(),
                    expire: try uint32(),
                    minimum: try uint32()
                )
            )
        case .srv:
            let priority = try uint16()
            let weight = try uint16()
            let port = try uint16()
            return .srv(
                priority: priority,
                weight: weight,
                port: port,
                target: try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            )
        case .naptr:
            let order = try uint16()
            let preference = try uint16()
            let flags = try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() }
            let services = try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() }
            let regexp = try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() }
            let replacement = try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            return .naptr(
                .init(
                    order: order,
                    preference: preference,
                    flags: flags,
                    services: services,
                    regexp: regexp,
                    replacement: replacement
                )
            )
        case .caa:
            let flags = try uint8()
            let tag = try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() }
            guard offset <= end else { throw DNSDecodingError(.badRecordData, at: offset) }
            return .caa(flags: flags, tag: String(decoding: tag, as: UTF8.self), value: try bytes(end - offset))
        case .ds, DNSType(59):
            guard end - start >= 4 else { throw DNSDecodingError(.badRecordData, at: start) }
            return .ds(
                keyTag: try uint16(),
                algorithm: try uint8(),
                digestType: try uint8(),
                digest: try bytes(end - offset)
            )
        case .dnskey, DNSType(60):
            guard end - start >= 4 else { throw DNSDecodingError(.badRecordData, at: start) }
            return .dnskey(
                flags: try uint16(),
                protocolValue: try uint8(),
                algorithm: try uint8(),
                publicKey: try bytes(end - offset)
            )
        case .rrsig:
            guard end - start >= 18 else { throw DNSDecodingError(.badRecordData, at: start) }
            let typeCovered = DNSType(try uint16())
            let algorithm = try uint8()
            let labels = try uint8()
            let originalTTL = try uint32()
            let expiration = try uint32()
            let inception = try uint32()
            let keyTag = try uint16()
            let signer = try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            return .rrsig(
                .init(
                    typeCovered: typeCovered,
                    algorithm: algorithm,
                    labels: labels,
                    originalTTL: originalTTL,
                    expiration: expiration,
                    inception: inception,
                    keyTag: keyTag,
                    signer: signer,
                    signature: try bytes(end - offset)
                )
            )
        case .nsec:
            let next = try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            return .nsec(next: next, types: try typeBitmaps(end: end))
        case .nsec3:
            let hashAlgorithm = try uint8()
            let flags = try uint8()
            let iterations = try uint16()
            let salt = try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() }
            let next = try bounded(end) { reader throws(DNSDecodingError) in try reader.characterString() }
            return .nsec3(
                .init(
                    hashAlgorithm: hashAlgorithm,
                    flags: flags,
                    iterations: iterations,
                    salt: salt,
                    nextHashedOwner: next,
                    types: try typeBitmaps(end: end)
                )
            )
        case .svcb, .https:
            let priority = try uint16()
            let target = try bounded(end) { reader throws(DNSDecodingError) in try reader.name() }
            var parameters: [(key: UInt16, value: [UInt8])] = []
            while offset < end {
                let key = try uint16()
                let length = Int(try uint16())
                guard offset + length <= end else { throw DNSDecodingError(.badRecordData, at: offset) }
                parameters.append((key, try bytes(length)))
            }
            return .serviceBinding(priority: priority, target: target, parameters: parameters)
        case .opt:
            var options: [EDNSOption] = []
            while offset < end {
                let code = try uint16()
                let length = Int(try uint16())
                guard offset + length <= end else { throw DNSDecodingError(.badRecordData, at: offset) }
                options.append(EDNSOption(code: code, data: try bytes(length)))
            }
            return .opt(options)
        default:
            return .unknown(try bytes(end - start))
        }
    }

    /// NSEC / NSEC3 type bitmaps (RFC 4034 §4.1.2).
    private mutating func typeBitmaps(end: Int) throws(DNSDecodingError) -> [DNSType] {
        var types: [DNSType] = []
        while offset < end {
            let window = try uint8()
            let length = Int(try uint8())
            guard length >= 1, length <= 32, offset + length <= end else {
                throw DNSDecodingError(.badRecordData, at: offset)
            }
            for index in 0..<length {
                let byte = buffer[offset + index]
                for bit in 0..<8 where byte & (0x80 >> bit) != 0 {
                    types.append(DNSType(UInt16(window) << 8 | UInt16(index * 8 + bit)))
                }
            }
            offset += length
        }
        return types
    }
}

/// Writes a message, compressing names against those already written.
struct DNSWriter {
    var bytes: [UInt8] = []
    /// Offsets of name suffixes already written (wire form → offset), for compression.
    private var suffixes: [[UInt8]: Int] = [:]

    mutating func uint8(_ value: UInt8) { bytes.append(value) }

    mutating func uint16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    mutating func uint32(_ value: UInt32) {
        uint16(UInt16(value >> 16))
        uint16(UInt16(value & 0xFFFF))
    }

    mutating func characterString(_ value: [UInt8]) {
        let clipped = value.prefix(255)
        bytes.append(UInt8(clipped.count))
        bytes.append(contentsOf: clipped)
    }

    mutating func name(_ name: DNSName, compress: Bool) {
        // Suffixes match byte for byte, not case-insensitively, so that names keep the case they were sent in
        // (resolvers randomise it, RFC 0x20 draft), and a decoded message re-encodes to the same names.
        let wire = name.wire
        var index = 0
        while index < wire.count, wire[index] != 0 {
            let suffix = Array(wire[index...])
            if compress, let target = suffixes[suffix] {
                uint16(0xC000 | UInt16(target))
                return
            }
            if bytes.count < 0x4000 { suffixes[suffix] = bytes.count }
            let length = Int(wire[index])
            bytes.append(contentsOf: wire[index...(index + length)])
            index += 1 + length
        }
        bytes.append(0)
    }

    mutating func record(_ record: DNSResourceRecord) {
        name(record.name, compress: true)
        uint16(record.type.rawValue)
        uint16(record.rawClass)
        uint32(record.ttl)
        let lengthPosition = bytes.count
        uint16(0)
        // RFC 3597 §4: only the well-known types of RFC 1035 compress names inside their data.
        recordData(record.data, compress: [.cname, .ns, .ptr, .mx, .soa].contains(record.type))
        let length = bytes.count - lengthPosition - 2
        bytes[lengthPosition] = UInt8(length >> 8 & 0xFF)
        bytes[lengthPosition + 1] = UInt8(length & 0xFF)
    }

    mutating func recordData(_ data: DNSRecordData, compress: Bool) {
        switch data {
        case .a(let address): bytes.append(contentsOf: address.bytes.suffix(4))
        case .aaaa(let address): bytes.append(contentsOf: address.bytes)
        case .cname(let target), .ns(let target), .ptr(let target): name(target, compress: compress)
        case .mx(let preference, let exchange):
            uint16(preference)
            name(exchange, compress: compress)
        case .txt(let strings): for string in strings { characterString(string) }
        case .soa(let soa):
            name(soa.primary, compress: compress)
            name(soa.mailbox, compress: compress)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { uint32(value) }
        case .srv(let priority, let weight, let port, let target):
            uint16(priority)
            uint16(weight)
            uint16(port)
            name(target, compress: false)
        case .naptr(let naptr):
            uint16(naptr.order)
            uint16(naptr.preference)
            characterString(naptr.flags)
            characterString(naptr.services)
            characterString(naptr.regexp)
            name(naptr.replacement, compress: false)
        case .caa(let flags, let tag, let value):
            uint8(flags)
            characterString(Array(tag.utf8))
            bytes.append(contentsOf: value)
        case .ds(let keyTag, let algorithm, let digestType, let digest):
            uint16(keyTag)
            uint8(algorithm)
            uint8(digestType)
            bytes.append(contentsOf: digest)
        case .dnskey(let flags, let protocolValue, let algorithm, let publicKey):
            uint16(flags)
            uint8(protocolValue)
            uint8(algorithm)
            bytes.append(contentsOf: publicKey)
        case .rrsig(let rrsig):
            uint16(rrsig.typeCovered.rawValue)
            uint8(rrsig.algorithm)
            uint8(rrsig.labels)
            uint32(rrsig.originalTTL)
            uint32(rrsig.expiration)
            uint32(rrsig.inception)
            uint16(rrsig.keyTag)
            name(rrsig.signer, compress: false)
            bytes.append(contentsOf: rrsig.signature)
        case .nsec(let next, let types):
            name(next, compress: false)
            typeBitmaps(types)
        case .nsec3(let nsec3):
            uint8(nsec3.hashAlgorithm)
            uint8(nsec3.flags)
            uint16(nsec3.iterations)
            characterString(nsec3.salt)
            characterString(nsec3.nextHashedOwner)
            typeBitmaps(nsec3.types)
        case .serviceBinding(let priority, let target, let parameters):
            uint16(priority)
            name(target, compress: false)
            for parameter in parameters {
                uint16(parameter.key)
                uint16(UInt16(truncatingIfNeeded: parameter.value.count))
                bytes.append(contentsOf: parameter.value)
            }
        case .opt(let options):
            for option in options {
                uint16(option.code)
                uint16(UInt16(truncatingIfNeeded: option.data.count))
                bytes.append(contentsOf: option.data)
            }
        case .unknown(let data): bytes.append(contentsOf: data)
        }
    }

    private mutating func typeBitmaps(_ types: [DNSType]) {
        let sorted = Set(types.map(\.rawValue)).sorted()
        var index = 0
        while index < sorted.count {
            let window = sorted[index] >> 8
            var bitmap = [UInt8](repeating: 0, count: 32)
            var length = 0
            while index < sorted.count, sorted[index] >> 8 == window {
                let low = Int(sorted[index] & 0xFF)
                bitmap[low / 8] |= 0x80 >> UInt8(low % 8)
                length = max(length, low / 8 + 1)
                index += 1
            }
            uint8(UInt8(window))
            uint8(UInt8(length))
            bytes.append(contentsOf: bitmap.prefix(length))
        }
    }
}
