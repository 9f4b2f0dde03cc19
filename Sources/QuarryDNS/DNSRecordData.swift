import Foundation
public import QuarryCore

/// The data of a resource record, decoded by type. Types without a case here are kept as their raw bytes and
/// written in RFC 3597's generic form (`\# 4 0a000001`).
public enum DNSRecordData: Hashable, Sendable {
    case a(IPAddress)
    case aaaa(IPAddress)
    case cname(DNSName)
    case ns(DNSName)
    case ptr(DNSName)
    case mx(preference: UInt16, exchange: DNSName)
    /// Character strings, each up to 255 bytes.
    case txt([[UInt8]])
    case soa(SOA)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case naptr(NAPTR)
    case caa(flags: UInt8, tag: String, value: [UInt8])
    case ds(keyTag: UInt16, algorithm: UInt8, digestType: UInt8, digest: [UInt8])
    case dnskey(flags: UInt16, protocolValue: UInt8, algorithm: UInt8, publicKey: [UInt8])
    case rrsig(RRSIG)
    case nsec(next: DNSName, types: [DNSType])
    case nsec3(NSEC3)
    /// SVCB and HTTPS (RFC 9460): priority, target, and parameters by key.
    case serviceBinding(priority: UInt16, target: DNSName, parameters: [(key: UInt16, value: [UInt8])])
    case opt([EDNSOption])
    case unknown([UInt8])

    public struct SOA: Hashable, Sendable {
        public var primary: DNSName
        public var mailbox: DNSName
        public var serial: UInt32
        public var refresh: UInt32
        public var retry: UInt32
        public var expire: UInt32
        public var minimum: UInt32

        public init(
            primary: DNSName,
            mailbox: DNSName,
            serial: UInt32,
            refresh: UInt32,
            retry: UInt32,
            expire: UInt32,
            minimum: UInt32
        ) {
            self.primary = primary
            self.mailbox = mailbox
            self.serial = serial
            self.refresh = refresh
            self.retry = retry
            self.expire = expire
            self.minimum = minimum
        }
    }

    public struct NAPTR: Hashable, Sendable {
        public var order: UInt16
        public var preference: UInt16
        public var flags: [UInt8]
        public var services: [UInt8]
        public var regexp: [UInt8]
        public var replacement: DNSName

        public init(
            order: UInt16,
            preference: UInt16,
            flags: [UInt8],
            services: [UInt8],
            regexp: [UInt8],
            replacement: DNSName
        ) {
            self.order = order
            self.preference = preference
            self.flags = flags
            self.services = services
            self.regexp = regexp
            self.replacement = replacement
        }
    }

    public struct RRSIG: Hashable, Sendable {
        public var typeCovered: DNSType
        public var algorithm: UInt8
        public var labels: UInt8
        public var originalTTL: UInt32
        public var expiration: UInt32
        public var inception: UInt32
        public var keyTag: UInt16
        public var signer: DNSName
        public var signature: [UInt8]

        public init(
            typeCovered: DNSType,
            algorithm: UInt8,
            labels: UInt8,
            originalTTL: UInt32,
            expiration: UInt32,
            inception: UInt32,
            keyTag: UInt16,
            signer: DNSName,
            signature: [UInt8]
        ) {
            self.typeCovered = typeCovered
            self.algorithm = algorithm
            self.labels = labels
            self.originalTTL = originalTTL
            self.expiration = expiration
            self.inception = inception
            self.keyTag = keyTag
            self.signer = signer
            self.signature = signature
        }
    }

    public struct NSEC3: Hashable, Sendable {
        public var hashAlgorithm: UInt8
        public var flags: UInt8
        public var iterations: UInt16
        public var salt: [UInt8]
        public var nextHashedOwner: [UInt8]
        public var types: [DNSType]

        public init(
            hashAlgorithm: UInt8,
            flags: UInt8,
            iterations: UInt16,
            salt: [UInt8],
            nextHashedOwner: [UInt8],
            types: [DNSType]
        ) {
            self.hashAlgorithm = hashAlgorithm
            self.flags = flags
            self.iterations = iterations
            self.salt = salt
            self.nextHashedOwner = nextHashedOwner
            self.types = types
        }
    }

    public static func == (a: DNSRecordData, b: DNSRecordData) -> Bool {
        var left = DNSWriter()
        var right = DNSWriter()
        left.recordData(a, compress: false)
        right.recordData(b, compress: false)
        return left.bytes == right.bytes && a.caseName == b.caseName
    }

    public func hash(into hasher: inout Hasher) {
        var writer = DNSWriter()
        writer.recordData(self, compress: false)
        hasher.combine(writer.bytes)
    }

    private var caseName: String {
        switch self {
        case .a: return "a"
        case .aaaa: return "aaaa"
        case .cname: return "cname"
        case .ns: return "ns"
        case .ptr: return "ptr"
        case .mx: return "mx"
        case .txt: return "txt"
        case .soa: return "soa"
        case .srv: return "srv"
        case .naptr: return "naptr"
        case .caa: return "caa"
        case .ds: return "ds"
        case .dnskey: return "dnskey"
        case .rrsig: return "rrsig"
        case .nsec: return "nsec"
        case .nsec3: return "nsec3"
        case .serviceBinding: return "svcb"
        case .opt: return "opt"
        case .unknown: return "unknown"
        }
    }

    /// The record data in zone-file presentation form, as `dig` prints it.
    public var presentation: String {
        switch self {
        case .a(let address), .aaaa(let address): return address.description
        case .cname(let name), .ns(let name), .ptr(let name): return name.description
        case .mx(let preference, let exchange): return "\(preference) \(exchange)"
        case .txt(let strings): return strings.map(quoted).joined(separator: " ")
        case .soa(let soa):
            return
                "\(soa.primary) \(soa.mailbox) \(soa.serial) \(soa.refresh) \(soa.retry) \(soa.expire) \(soa.minimum)"
        case .srv(let priority, let weight, let port, let target): return "\(priority) \(weight) \(port) \(target)"
        case .naptr(let naptr):
            return
                "\(naptr.order) \(naptr.preference) \(quoted(naptr.flags)) \(quoted(naptr.services)) \(quoted(naptr.regexp)) \(naptr.replacement)"
        case .caa(let flags, let tag, let value): return "\(flags) \(tag) \(quoted(value))"
        case .ds(let keyTag, let algorithm, let digestType, let digest):
            return "\(keyTag) \(algorithm) \(digestType) \(hex(digest).uppercased())"
        case .dnskey(let flags, let protocolValue, let algorithm, let publicKey):
            return "\(flags) \(protocolValue) \(algorithm) \(base64(publicKey))"
        case .rrsig(let rrsig):
            return
                "\(rrsig.typeCovered) \(rrsig.algorithm) \(rrsig.labels) \(rrsig.originalTTL) \(dnssecTime(rrsig.expiration)) \(dnssecTime(rrsig.inception)) \(rrsig.keyTag) \(rrsig.signer) \(base64(rrsig.signature))"
        case .nsec(let next, let types): return ([next.description] + types.map(\.description)).joined(separator: " ")
        case .nsec3(let nsec3):
            let salt = nsec3.salt.isEmpty ? "-" : hex(nsec3.salt).uppercased()
            return
                ([
                    "\(nsec3.hashAlgorithm) \(nsec3.flags) \(nsec3.iterations) \(salt) \(base32Hex(nsec3.nextHashedOwner))"
                ] + nsec3.types.map(\.description)).joined(separator: " ")
        case .serviceBinding(let priority, let target, let parameters):
            return ([String(priority), target.description] + parameters.map(serviceParameterText)).joined(
                separator: " "
            )
        case .opt(let options): return options.map { "\($0.name)=\($0.description)" }.joined(separator: " ")
        case .unknown(let bytes): return bytes.isEmpty ? "\\# 0" : "\\# \(bytes.count) \(hex(bytes))"
        }
    }
}

// MARK: Presentation helpers

func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 15)])
    }
    return String(decoding: text, as: UTF8.self)
}

/// Standard base 64 with padding, as DNSKEY and RRSIG data are written.
func base64(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString()
}

/// Base 32 with the extended hex alphabet, no padding (RFC 4648 §7), as NSEC3 writes hashed names.
func base32Hex(_ bytes: [UInt8]) -> String {
    let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUV".utf8)
    var text: [UInt8] = []
    var buffer: UInt64 = 0
    var bits = 0
    for byte in bytes {
        buffer = buffer << 8 | UInt64(byte)
        bits += 8
        while bits >= 5 {
            text.append(alphabet[Int(buffer >> UInt64(bits - 5) & 31)])
            bits -= 5
        }
    }
    if bits > 0 { text.append(alphabet[Int(buffer << UInt64(5 - bits) & 31)]) }
    return String(decoding: text, as: UTF8.self)
}

/// A character string in quotes, with `"` and `\` escaped and bytes outside printable ASCII as `\DDD`.
func quoted(_ bytes: [UInt8]) -> String {
    var text: [UInt8] = [UInt8(ascii: "\"")]
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            text.append(UInt8(ascii: "\\"))
            text.append(byte)
        case 0x20...0x7E: text.append(byte)
        default:
            text.append(UInt8(ascii: "\\"))
            text.append(UInt8(ascii: "0") + byte / 100)
            text.append(UInt8(ascii: "0") + byte / 10 % 10)
            text.append(UInt8(ascii: "0") + byte % 10)
        }
    }
    text.append(UInt8(ascii: "\""))
    return String(decoding: text, as: UTF8.self)
}

/// RRSIG times as `YYYYMMDDHHmmSS` (RFC 4034 §3.2).
func dnssecTime(_ seconds: UInt32) -> String {
    let days = Int(seconds / 86_400)
    let rest = Int(seconds % 86_400)
    let (year, month, day) = ISO8601.civilFromDays(days)
    func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return pad(year, 4) + pad(month, 2) + pad(day, 2) + pad(rest / 3600, 2) + pad(rest / 60 % 60, 2) + pad(rest % 60, 2)
}

func ipv6Text(_ bytes: [UInt8]) -> String {
    IPAddress(bytes: bytes)?.description ?? hex(bytes)
}

func serviceParameterText(_ parameter: (key: UInt16, value: [UInt8])) -> String {
    let value = parameter.value
    switch parameter.key {
    case 0:
        var keys: [String] = []
        var index = 0
        while index + 1 < value.count {
            keys.append(serviceKeyName(UInt16(value[index]) << 8 | UInt16(value[index + 1])))
            index += 2
        }
        return "mandatory=" + keys.joined(separator: ",")
    case 1:
        var protocols: [String] = []
        var index = 0
        while index < value.count {
            let length = Int(value[index])
            let end = min(value.count, index + 1 + length)
            protocols.append(String(decoding: value[(index + 1)..<end], as: UTF8.self))
            index = end
        }
        return "alpn=\"" + protocols.joined(separator: ",") + "\""
    case 2: return "no-default-alpn"
    case 3 where value.count == 2: return "port=\(UInt16(value[0]) << 8 | UInt16(value[1]))"
    case 4:
        var addresses: [String] = []
        var index = 0
        while index + 4 <= value.count {
            addresses.append(value[index..<index + 4].map { String($0) }.joined(separator: "."))
            index += 4
        }
        return "ipv4hint=" + addresses.joined(separator: ",")
    case 5: return "ech=" + base64(value)
    case 6:
        var addresses: [String] = []
        var index = 0
        while index + 16 <= value.count {
            addresses.append(ipv6Text(Array(value[index..<index + 16])))
            index += 16
        }
        return "ipv6hint=" + addresses.joined(separator: ",")
    default:
        return "\(serviceKeyName(parameter.key))=" + quoted(value)
    }
}

func serviceKeyName(_ key: UInt16) -> String {
    switch key {
    case 0: return "mandatory"
    case 1: return "alpn"
    case 2: return "no-default-alpn"
    case 3: return "port"
    case 4: return "ipv4hint"
    case 5: return "ech"
    case 6: return "ipv6hint"
    default: return "key\(key)"
    }
}
