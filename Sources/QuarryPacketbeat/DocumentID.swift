import Crypto
import Foundation

/// Document ids derived from what a document describes rather than from where or when it was read, so that ingesting
/// the same packets again (the same file twice, overlapping files, a rerun after an interrupted ingest) finds the
/// documents already there instead of writing them again.
///
/// A DNS transaction is named by its transport, endpoints and DNS id and the time of its first frame; a flow report by
/// the flow's key, its first packet's time, the report's number within the flow and whether it is the final one. The id is the first
/// 15 bytes of the SHA-256 of that description in URL-safe base64: 20 characters, the length of Elasticsearch's own.
enum DocumentID {
    static func dns(_ key: PacketbeatProcessor.TransactionKey, start: Int64) -> String {
        make(
            "dns|\(key.transport)|\(key.client)|\(key.clientPort)|\(key.server)|\(key.serverPort)|\(key.id)|\(start)"
        )
    }

    static func flow(_ key: PacketbeatProcessor.FlowKey, start: Int64, report: Int, final: Bool) -> String {
        make("flow|\(description(key))|\(start)|\(report)|\(final)")
    }

    /// The flow key as text: VLANs, protocol and both endpoints in their canonical order.
    static func description(_ key: PacketbeatProcessor.FlowKey) -> String {
        let vlans = key.vlans.map(String.init).joined(separator: ".")
        return "\(vlans)|\(key.ipProtocol)|\(key.low)|\(key.lowPort)|\(key.high)|\(key.highPort)"
    }

    private static func make(_ description: String) -> String {
        let digest = Data(SHA256.hash(data: Array(description.utf8)).prefix(15))
        return String(digest.base64EncodedString().map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}
