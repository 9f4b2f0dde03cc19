/// A DNS message (RFC 1035 §4), decoded from or encoded to the wire format.
///
/// Hand-written: no package in the project's set decodes DNS. Decoding never traps on hostile input: every read is
/// bounds-checked, compression pointers must point backwards, and names stop at 255 bytes, so a malformed message
/// gives a ``DNSDecodingError`` with the offset where it went wrong.
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: DNSOpcode
    public var isAuthoritative: Bool
    public var isTruncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    /// The reserved Z bit (bit 9), kept so a message re-encodes to the same bytes.
    public var zero: Bool
    public var authenticData: Bool
    public var checkingDisabled: Bool
    /// The header's 4-bit response code; ``responseCode`` adds EDNS's upper bits.
    public var headerResponseCode: UInt8
    public var questions: [DNSQuestion]
    public var answers: [DNSResourceRecord]
    public var authorities: [DNSResourceRecord]
    /// Additional records, including the EDNS OPT pseudo-record when there is one.
    public var additionals: [DNSResourceRecord]

    public init(
        id: UInt16 = 0,
        isResponse: Bool = false,
        opcode: DNSOpcode = .query,
        isAuthoritative: Bool = false,
        isTruncated: Bool = false,
        recursionDesired: Bool = true,
        recursionAvailable: Bool = false,
        zero: Bool = false,
        authenticData: Bool = false,
        checkingDisabled: Bool = false,
        headerResponseCode: UInt8 = 0,
        questions: [DNSQuestion] = [],
        answers: [DNSResourceRecord] = [],
        authorities: [DNSResourceRecord] = [],
        additionals: [DNSResourceRecord] = []
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.isAuthoritative = isAuthoritative
        self.isTruncated = isTruncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.zero = zero
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.headerResponseCode = headerResponseCode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }

    /// The EDNS pseudo-record's contents, when the message has an OPT record.
    public var edns: EDNS? {
        for record in additionals {
            if case .opt(let options) = record.data { return EDNS(record: record, options: options) }
        }
        return nil
    }

    /// The full response code: the header's 4 bits, extended by EDNS's 8 upper bits.
    public var responseCode: DNSResponseCode {
        let upper = UInt16(edns?.extendedResponseCodeHigh ?? 0)
        return DNSResponseCode(rawValue: upper << 4 | UInt16(headerResponseCode))
    }

    // MARK: Decoding

    /// Decodes one message.
    public static func decode(_ bytes: some Collection<UInt8>) throws(DNSDecodingError) -> DNSMessage {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(DNSDecodingError) -> DNSMessage in try decode(buffer) }
        }
        if let result { return try result.get() }
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(DNSDecodingError) in try decode(buffer) }
    }

    public static func decode(_ buffer: UnsafeBufferPointer<UInt8>) throws(DNSDecodingError) -> DNSMessage {
        var reader = DNSReader(buffer)
        let id = try reader.uint16()
        let flags = try reader.uint16()
        let questionCount = Int(try reader.uint16())
        let answerCount = Int(try reader.uint16())
        let authorityCount = Int(try reader.uint16())
        let additionalCount = Int(try reader.uint16())
        var message = DNSMessage(
            id: id,
            isResponse: flags & 0x8000 != 0,
            opcode: DNSOpcode(rawValue: UInt8(flags >> 11 & 0xF)),
            isAuthoritative: flags & 0x0400 != 0,
            isTruncated: flags & 0x0200 != 0,
            recursionDesired: flags & 0x0100 != 0,
            recursionAvailable: flags & 0x0080 != 0,
            zero: flags & 0x0040 != 0,
            authenticData: flags & 0x0020 != 0,
            checkingDisabled: flags & 0x0010 != 0,
            headerResponseCode: UInt8(flags & 0xF)
        )
        // Counts come from the wire: reserve no more than the bytes could hold.
        message.questions.reserveCapacity(min(questionCount, buffer.count / 5))
        for _ in 0..<questionCount {
            let name = try reader.name()
            let type = DNSType(try reader.uint16())
            let rawClass = try reader.uint16()
            message.questions.append(DNSQuestion(name: name, type: type, rawClass: rawClass))
        }
        message.answers = try reader.records(answerCount)
        message.authorities = try reader.records(authorityCount)
        message.additionals = try reader.records(additionalCount)
        return message
    }

    // MARK: Encoding

    /// The message in wire format; names are compressed where RFC 3597 allows it.
    public func encode() -> [UInt8] {
        var writer = DNSWriter()
        writer.uint16(id)
        var flags: UInt16 = UInt16(opcode.rawValue & 0xF) << 11 | UInt16(headerResponseCode & 0xF)
        if isResponse { flags |= 0x8000 }
        if isAuthoritative { flags |= 0x0400 }
        if isTruncated { flags |= 0x0200 }
        if recursionDesired { flags |= 0x0100 }
        if recursionAvailable { flags |= 0x0080 }
        if zero { flags |= 0x0040 }
        if authenticData { flags |= 0x0020 }
        if checkingDisabled { flags |= 0x0010 }
        writer.uint16(flags)
        writer.uint16(UInt16(truncatingIfNeeded: questions.count))
        writer.uint16(UInt16(truncatingIfNeeded: answers.count))
        writer.uint16(UInt16(truncatingIfNeeded: authorities.count))
        writer.uint16(UInt16(truncatingIfNeeded: additionals.count))
        for question in questions {
            writer.name(question.name, compress: true)
            writer.uint16(question.type.rawValue)
            writer.uint16(question.rawClass)
        }
        for record in answers { writer.record(record) }
        for record in authorities { writer.record(record) }
        for record in additionals { writer.record(record) }
        return writer.bytes
    }
}

/// A question: the name, type and class asked about.
public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    /// The class field as sent; for mDNS its top bit asks for a unicast response.
    public var rawClass: UInt16

    public init(name: DNSName, type: DNSType, rawClass: UInt16 = 1) {
        self.name = name
        self.type = type
        self.rawClass = rawClass
    }

    public var `class`: DNSClass { DNSClass(rawClass & 0x7FFF) }
}

/// A resource record.
public struct DNSResourceRecord: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    /// The class field as sent (for OPT, the requestor's UDP payload size; for mDNS, with the cache-flush bit).
    public var rawClass: UInt16
    /// The TTL field as sent (for OPT, the extended response code, version and flags).
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: DNSName, type: DNSType, rawClass: UInt16 = 1, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.type = type
        self.rawClass = rawClass
        self.ttl = ttl
        self.data = data
    }

    public var `class`: DNSClass { DNSClass(type == .opt ? rawClass : rawClass & 0x7FFF) }
}

/// Extension mechanisms for DNS (RFC 6891): what the OPT pseudo-record carries.
public struct EDNS: Hashable, Sendable {
    public var udpPayloadSize: UInt16
    public var extendedResponseCodeHigh: UInt8
    public var version: UInt8
    /// DNSSEC OK.
    public var dnssecOK: Bool
    public var options: [EDNSOption]

    init(record: DNSResourceRecord, options: [EDNSOption]) {
        udpPayloadSize = record.rawClass
        extendedResponseCodeHigh = UInt8(record.ttl >> 24)
        version = UInt8(record.ttl >> 16 & 0xFF)
        dnssecOK = record.ttl & 0x8000 != 0
        self.options = options
    }

    public init(udpPayloadSize: UInt16 = 1232, dnssecOK: Bool = false, options: [EDNSOption] = []) {
        self.udpPayloadSize = udpPayloadSize
        extendedResponseCodeHigh = 0
        version = 0
        self.dnssecOK = dnssecOK
        self.options = options
    }

    /// The OPT record carrying this EDNS information.
    public var record: DNSResourceRecord {
        let ttl = UInt32(extendedResponseCodeHigh) << 24 | UInt32(version) << 16 | (dnssecOK ? 0x8000 : 0)
        return DNSResourceRecord(name: .root, type: .opt, rawClass: udpPayloadSize, ttl: ttl, data: .opt(options))
    }
}

/// One EDNS option.
public struct EDNSOption: Hashable, Sendable, CustomStringConvertible {
    public var code: UInt16
    public var data: [UInt8]

    public init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }

    public static let nsid: UInt16 = 3
    public static let clientSubnet: UInt16 = 8
    public static let expire: UInt16 = 9
    public static let cookie: UInt16 = 10
    public static let keepalive: UInt16 = 11
    public static let padding: UInt16 = 12

    public var name: String {
        switch code {
        case 3: return "NSID"
        case 5: return "DAU"
        case 6: return "DHU"
        case 7: return "N3U"
        case 8: return "ECS"
        case 9: return "EXPIRE"
        case 10: return "COOKIE"
        case 11: return "KEEPALIVE"
        case 12: return "PADDING"
        case 15: return "EDE"
        default: return "OPT\(code)"
        }
    }

    /// What the option says, in words: `10.0.0.0/24/0` for a client subnet, the timeout for keepalive, the length of
    /// padding, hex for cookies and anything else.
    public var description: String {
        switch code {
        case Self.clientSubnet where data.count >= 4:
            let family = UInt16(data[0]) << 8 | UInt16(data[1])
            let sourcePrefix = data[2]
            let scopePrefix = data[3]
            var address = Array(data[4...])
            let size = family == 2 ? 16 : 4
            address += [UInt8](repeating: 0, count: max(0, size - address.count))
            let text =
                family == 2
                ? ipv6Text(Array(address.prefix(16))) : address.prefix(4).map { String($0) }.joined(separator: ".")
            return "\(text)/\(sourcePrefix)/\(scopePrefix)"
        case Self.keepalive:
            guard data.count == 2 else { return "" }
            return String(UInt16(data[0]) << 8 | UInt16(data[1]))
        case Self.padding:
            return String(data.count)
        default:
            return hex(data)
        }
    }
}
