import Crypto
public import QuarryCore

/// The Community ID flow hash, version 1 (corelight/community-id-spec): the same string for both directions of a
/// flow, so that Packetbeat, Zeek and Suricata records of one conversation can be joined.
public enum CommunityID {
    /// ICMP types whose replies map back to them, making request and reply one flow: (type → counterpart).
    private static let icmpPairs: [UInt16: UInt16] = [
        8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17,
    ]
    private static let icmp6Pairs: [UInt16: UInt16] = [
        128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 139: 140, 140: 139, 144: 145,
        145: 144,
    ]

    /// The flow's ID; `sourcePort` / `destinationPort` are the ICMP type and code for ICMP, nil for protocols
    /// without ports.
    public static func compute(
        source: IPAddress,
        destination: IPAddress,
        protocolNumber: UInt8,
        sourcePort: UInt16?,
        destinationPort: UInt16?,
        seed: UInt16 = 0
    ) -> String {
        var sourceAddress = source
        var destinationAddress = destination
        var ports: (UInt16, UInt16)? = sourcePort.flatMap { s in destinationPort.map { (s, $0) } }
        var oneWay = false
        if protocolNumber == 1 || protocolNumber == 58, let (type, code) = ports {
            let pairs = protocolNumber == 1 ? icmpPairs : icmp6Pairs
            if let counterpart = pairs[type] {
                ports = (type, counterpart)
            } else {
                ports = (type, code)
                oneWay = true
            }
        }
        // Order the endpoints so both directions hash the same.
        let sourceBytes = sourceAddress.isIPv4 ? Array(sourceAddress.bytes.suffix(4)) : sourceAddress.bytes
        let destinationBytes =
            destinationAddress.isIPv4 ? Array(destinationAddress.bytes.suffix(4)) : destinationAddress.bytes
        var first = sourceBytes
        var second = destinationBytes
        let smaller = sourceBytes.lexicographicallyPrecedes(destinationBytes)
        let equal = sourceBytes == destinationBytes
        if !oneWay && !(smaller || (equal && (ports.map { $0.0 < $0.1 } ?? true))) {
            swap(&first, &second)
            swap(&sourceAddress, &destinationAddress)
            ports = ports.map { ($0.1, $0.0) }
        }
        var input: [UInt8] = [UInt8(seed >> 8), UInt8(seed & 0xFF)]
        input += first
        input += second
        input += [protocolNumber, 0]
        if let (a, b) = ports {
            input += [UInt8(a >> 8), UInt8(a & 0xFF), UInt8(b >> 8), UInt8(b & 0xFF)]
        }
        let digest = Array(Insecure.SHA1.hash(data: input))
        return "1:" + base64(digest)
    }

    private static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var text: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let value = b0 << 16 | b1 << 8 | b2
            text.append(alphabet[Int(value >> 18 & 63)])
            text.append(alphabet[Int(value >> 12 & 63)])
            text.append(remaining > 1 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
            text.append(remaining > 2 ? alphabet[Int(value & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: text, as: UTF8.self)
    }
}
