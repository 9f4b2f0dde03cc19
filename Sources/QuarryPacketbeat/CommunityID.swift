import Crypto
import Foundation
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

    /// The ports the hash uses: the ports themselves, or for ICMP the type and the type of its counterpart (echo
    /// request ↔ reply, …) so that both directions hash the same; one-way ICMP types keep their code. The third value
    /// says whether the flow is one-way (then the endpoints are not reordered).
    public static func portEquivalents(
        protocolNumber: UInt8,
        sourcePort: UInt16?,
        destinationPort: UInt16?
    )
        -> (UInt16, UInt16, oneWay: Bool)?
    {
        guard let sourcePort, let destinationPort else { return nil }
        guard protocolNumber == 1 || protocolNumber == 58 else { return (sourcePort, destinationPort, false) }
        let pairs = protocolNumber == 1 ? icmpPairs : icmp6Pairs
        if let counterpart = pairs[sourcePort] { return (sourcePort, counterpart, false) }
        return (sourcePort, destinationPort, true)
    }

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
        let equivalents = portEquivalents(
            protocolNumber: protocolNumber,
            sourcePort: sourcePort,
            destinationPort: destinationPort
        )
        var ports = equivalents.map { ($0.0, $0.1) }
        let oneWay = equivalents?.oneWay ?? false
        // Order the endpoints so both directions hash the same.
        var first = source.isIPv4 ? Array(source.bytes.suffix(4)) : source.bytes
        var second = destination.isIPv4 ? Array(destination.bytes.suffix(4)) : destination.bytes
        let smaller = first.lexicographicallyPrecedes(second)
        let equal = first == second
        if !oneWay && !(smaller || (equal && (ports.map { $0.0 <= $0.1 } ?? true))) {
            swap(&first, &second)
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
        return "1:" + Data(digest).base64EncodedString()
    }
}
