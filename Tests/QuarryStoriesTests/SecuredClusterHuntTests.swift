import Foundation
import QuarryCore
import QuarrySamples
import QuarryTesting
import Testing

/// The reference hunt against Quarry's Elasticsearch API with security on, as the Tines story it replaces runs
/// against a secured cluster: an API key minted with `quarry es api-key create`, kept as a credential, sent as
/// `Authorization: ApiKey …`. Its report must be the one the same hunt gives in process on the same capture.
@Suite(.mayBlock)
struct SecuredClusterHuntTests {
    @Test(.timeLimit(.minutes(4))) func theHuntAuthenticatesWithAnAPIKeyMintedByTheCLI() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("net.pcap").path
            let now = Int64(Date().timeIntervalSince1970)
            _ = try CaptureGenerator.write(
                path: capture,
                configuration: .init(hosts: 12, minutes: 12, start: (now - 720) * 1_000_000_000)
            )
            let domain = CaptureGenerator.plantedDomains[0].name
            let clusterData = directory.appendingPathComponent("cluster").path
            let huntData = directory.appendingPathComponent("hunter").path
            let ingest = try await QuarryCommand.run(["ingest", capture, "--data", clusterData, "--log-level", "error"])
            #expect(ingest.status == 0, "\(ingest.error)")

            // The reference: the same hunt in process, on the same documents.
            let local = try await QuarryCommand.run([
                "hunt", "dns", domain, "--since", "1h", "--resolver", "none", "--json", "--data", clusterData,
                "--log-level", "error",
            ])
            #expect(local.status == 0, "\(local.error)")

            let (server, port) = try await QuarryServerProcess.start(
                ["serve", "--data", clusterData, "--es-port", "0", "--port", "0", "--log-level", "error"],
                announcement: "Elasticsearch API listening on"
            )
            defer {
                QuarryServerProcess.stop(server)
            }
            let minted = try await QuarryCommand.run([
                "es", "api-key", "create", "--name", "dns-hunt", "--expiration", "1d", "--index", "packetbeat-*",
                "--privileges", "read", "--data", clusterData,
            ])
            #expect(minted.status == 0, "\(minted.error)")
            let lines = minted.text.split(separator: "\n")
            let id = try #require(lines.first { $0.hasPrefix("id:") }?.split(separator: " ").last.map(String.init))
            let key = try #require(
                lines.first { $0.hasPrefix("api_key:") }?.split(separator: " ").last.map(String.init)
            )
            let stored = try await QuarryCommand.run(
                ["credentials", "set", "es_key", "--data", huntData, "--allowed-host", "127.0.0.1"],
                input: "\(id):\(key)"
            )
            #expect(stored.status == 0, "\(stored.error)")

            let remote = try await QuarryCommand.run([
                "hunt", "dns", domain, "--since", "1h", "--resolver", "none", "--json", "--data", huntData,
                "--cluster", "http://127.0.0.1:\(port)", "--cluster-credential", "es_key", "--log-level", "error",
            ])
            #expect(remote.status == 0, "\(remote.error)")
            let report = try JSON.parse(remote.text)
            let reference = try JSON.parse(local.text)
            #expect(report["hosts"] != [] && report["hosts"] == reference["hosts"])
            #expect(report["resolved_ips"] == reference["resolved_ips"])
            #expect(report["dns_queries"] == reference["dns_queries"])
            #expect(report["connections"] == reference["connections"])
            #expect(!remote.text.contains(key) && !remote.error.contains(key), "the key appears in no output")

            // Without the key the cluster refuses, and the hunt says so instead of reporting nothing found.
            let anonymous = try await QuarryCommand.run([
                "hunt", "dns", domain, "--since", "1h", "--resolver", "none", "--json", "--data", huntData,
                "--cluster", "http://127.0.0.1:\(port)", "--log-level", "error",
            ])
            #expect(anonymous.status != 0)
            #expect(anonymous.error.contains("401"), "\(anonymous.error)")
        }
    }
}
