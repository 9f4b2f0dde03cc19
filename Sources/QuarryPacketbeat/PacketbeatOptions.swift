import Foundation
public import QuarryCore

/// What the Packetbeat-compatible decoder does, with Packetbeat's defaults.
public struct PacketbeatOptions: Sendable {
    /// Ports whose UDP and TCP traffic is decoded as DNS (Packetbeat's `ports`; 5353 adds mDNS).
    public var dnsPorts: Set<UInt16> = [53, 5353]
    /// A query without a response for this long (capture time) is published with "No response" (`transaction_timeout`).
    public var transactionTimeout: Int64 = 10 * 1_000_000_000
    /// Whether to publish flow records (`type: flow`).
    public var flows = true
    /// Interval between reports of an active flow (`flows.period`); nil publishes only final reports.
    public var flowPeriod: Int64? = 10 * 1_000_000_000
    /// A flow without packets for this long ends, with a final report (`flows.timeout`).
    public var flowTimeout: Int64 = 30 * 1_000_000_000
    /// Include `dns.authorities` / `dns.additionals` records (`include_authorities`, `include_additionals`; the counts
    /// are always there).
    public var includeAuthorities = false
    public var includeAdditionals = false
    /// `host.name` and `host.ip` of the capturing host; they also decide `network.direction`.
    public var hostName: String?
    public var hostIPs: [IPAddress] = []
    public var publicSuffixes = PublicSuffixList.bundled

    public init() {}
}

/// What a run of the decoder saw and made.
public struct PacketbeatStatistics: Sendable {
    public var packets = 0
    public var bytes: Int64 = 0
    public var dnsMessages = 0
    public var dnsTransactions = 0
    public var flowReports = 0
    /// Problems by kind: packets that could not be decoded, DNS payloads that were not DNS, truncated TCP streams.
    public var errors: [String: Int] = [:]

    public init() {}

    mutating func count(_ kind: String, _ amount: Int = 1) {
        errors[kind, default: 0] += amount
    }
}

/// The agent and ECS version the documents name.
public enum PacketbeatAgent {
    public static let name = "quarry"
    public static let version = QuarryVersion.number
    public static let ecsVersion = "8.17.0"
}

/// Packetbeat's index names: `packetbeat-<version>-YYYY.MM.DD`, one per day of `@timestamp`.
public enum PacketbeatIndex {
    public static let version = "8.17.0"

    public static func name(for document: JSON) -> String {
        name(forTimestamp: document["@timestamp"]?.stringValue ?? "unknown")
    }

    /// The index for a document whose `@timestamp` is `timestamp` (ISO 8601; only the date counts).
    public static func name(forTimestamp timestamp: String) -> String {
        "packetbeat-\(version)-" + timestamp.prefix(10).replacingOccurrences(of: "-", with: ".")
    }
}
