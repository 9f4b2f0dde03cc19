import Foundation
import QuarryCore
import QuarryPacketbeat
import QuarrySearch
import QuarryTesting
import Testing

/// `quarry hunt sigma` with the ten DNS rules of `sigma/dns`, converted by sigma-cli and pySigma's Elasticsearch
/// backend (from PyPI, in `.build/python-sigma`), against a brute-force reading of each rule over generated events
/// (`Tests/python/sigma_oracle.py`).
@Suite(.enabled(if: SigmaCLI.missing == nil, "\(SigmaCLI.missing ?? "")"), .mayBlock)
struct SigmaHuntTests {
}

/// The virtual environment scripts/test makes for sigma-cli, and the project's rules and oracle.
enum SigmaCLI {
    static let environment = ProjectPaths.root.appendingPathComponent(".build/python-sigma/bin")
    static let sigma = environment.appendingPathComponent("sigma").path
    static let python = environment.appendingPathComponent("python").path
    static let oracle = ProjectPaths.root.appendingPathComponent("Tests/python/sigma_oracle.py").path
    static let rules = ProjectPaths.root.appendingPathComponent("sigma/dns")

    /// Why the tests cannot run here, or nil.
    static let missing: String? = {
        guard FileManager.default.isExecutableFile(atPath: sigma),
            let (status, _) = try? runToolBlocking(python, ["-c", "import yaml, sigma.backends.elasticsearch"]),
            status == 0
        else {
            return "sigma-cli and pysigma-backend-elasticsearch are missing from \(environment.path) "
                + "(scripts/test installs them from PyPI)"
        }
        return nil
    }()

    static func ruleFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: rules.path).filter { $0.hasSuffix(".yml") }.sorted()
            .map { rules.appendingPathComponent($0).path }
    }
}

extension SigmaHuntTests {

    @Test(.timeLimit(.minutes(8))) func everyRuleFindsWhatABruteForceReadingOfItFinds() async throws {
        try await withTemporaryDirectory { directory in
            let events = directory.appendingPathComponent("events.ndjson").path
            let data = directory.appendingPathComponent("data")
            let seed = Int(Date().timeIntervalSince1970) % 100_000
            let generated = try await runTool(
                SigmaCLI.python,
                [SigmaCLI.oracle, "generate", String(seed), "3000", events]
            )
            #expect(generated.status == 0)
            // Packetbeat's template first, as `quarry ingest` installs it: names are keywords.
            // close() releases the directory, which `quarry bulk` opens next.
            let store = try EmbeddedStore(configuration: .init(dataDirectory: data))
            try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)
            try store.close()
            let loaded = try await QuarryCommand.run(["bulk", events, "--data", data.path])
            #expect(loaded.status == 0, "\(loaded.error) \(loaded.text)")

            let files = try SigmaCLI.ruleFiles()
            #expect(files.count == 10)
            let (status, output) = try await runTool(SigmaCLI.python, [SigmaCLI.oracle, "evaluate", events] + files)
            #expect(status == 0, "\(String(decoding: output, as: UTF8.self))")
            let expected = try JSON.parse(Array(output))
            for file in files {
                let wanted = expected[file]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(!wanted.isEmpty, "\(file) matches none of the generated events (seed \(seed))")
                let hunt = try await QuarryCommand.run([
                    "hunt", "sigma", file, "--data", data.path, "--since", "2d", "--size", "10000", "--json",
                    "--sigma-cli", SigmaCLI.sigma,
                ])
                #expect(hunt.status == (wanted.isEmpty ? 2 : 0), "\(file): \(hunt.error)")
                let report = try JSON.parse(Array(hunt.output))
                let found = (report["hits"]?.arrayValue ?? []).compactMap { $0["_id"]?.stringValue }.sorted()
                #expect(found == wanted, "\(file) (seed \(seed)): query \(report["query"] ?? .null)")
                #expect(report["total"]?.intValue == Int64(wanted.count))
                #expect(report["rule"]?.stringValue?.isEmpty == false)
            }

            // A query converted beforehand needs no sigma-cli; without one, a rule says how to get it.
            let converted = directory.appendingPathComponent("suffixes.lucene")
            let conversion = try await runTool(
                SigmaCLI.sigma,
                [
                    "convert", "-t", "lucene", "--without-pipeline",
                    SigmaCLI.rules.appendingPathComponent("known-bad-suffixes.yml").path,
                ]
            )
            try Data(conversion.output).write(to: converted)
            let fromFile = try await QuarryCommand.run([
                "hunt", "sigma", converted.path, "--data", data.path, "--since", "2d", "--size", "10000", "--json",
            ])
            let wanted =
                expected[SigmaCLI.rules.appendingPathComponent("known-bad-suffixes.yml").path]?.arrayValue ?? []
            #expect(try JSON.parse(Array(fromFile.output))["total"]?.intValue == Int64(wanted.count))
            let withoutCLI = try await QuarryCommand.run(
                ["hunt", "sigma", SigmaCLI.rules.appendingPathComponent("txt-abuse.yml").path, "--data", data.path],
                environment: ["PATH": "/usr/bin:/bin", "QUARRY_SIGMA_CLI": ""]
            )
            #expect(withoutCLI.status == 1)
            #expect(withoutCLI.error.contains("sigma-cli is not installed"), "\(withoutCLI.error)")
            // A query that does not parse says where reading stopped.
            let broken = directory.appendingPathComponent("broken.lucene")
            try Data("dns.question.name:(unclosed".utf8).write(to: broken)
            let refused = try await QuarryCommand.run(["hunt", "sigma", broken.path, "--data", data.path])
            #expect(refused.status == 1)
            #expect(refused.error.contains("expected ')'"), "\(refused.error)")
        }
    }

    /// The rules on a decoded capture: the sample's reference domain sits under one of the known-bad suffixes.
    @Test(.timeLimit(.minutes(8))) func aRuleRunsOnACaptureDecodedFirst() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("network.pcap").path
            let data = directory.appendingPathComponent("data").path
            let sample = try await QuarryCommand.run([
                "sample", "capture", "--out", capture, "--hosts", "12", "--minutes", "10",
            ])
            #expect(sample.status == 0)
            let hunt = try await QuarryCommand.run([
                "hunt", "sigma", SigmaCLI.rules.appendingPathComponent("known-bad-suffixes.yml").path, "--capture",
                capture,
                "--data", data, "--json", "--sigma-cli", SigmaCLI.sigma,
            ])
            #expect(hunt.status == 0, "\(hunt.error)")
            let report = try JSON.parse(Array(hunt.output))
            let names = (report["hits"]?.arrayValue ?? []).compactMap {
                $0["_source"]?["dns"]?["question"]?["name"]?.stringValue
            }
            #expect(!names.isEmpty)
            // Names come in any case on the wire (0x20): Sigma compares without case, and so does the hunt.
            #expect(names.allSatisfy { $0.lowercased().hasSuffix(".evil-cdn.example") }, "\(names)")
            #expect(names.contains { $0 != $0.lowercased() }, "the sample asks in mixed case: \(names)")
            let withCase = try await QuarryCommand.run([
                "hunt", "sigma", SigmaCLI.rules.appendingPathComponent("known-bad-suffixes.yml").path, "--data", data,
                "--json", "--sigma-cli", SigmaCLI.sigma, "--match-case", "--since", "3650d",
            ])
            let exact = try JSON.parse(Array(withCase.output))["hits"]?.arrayValue ?? []
            #expect(exact.count < names.count)
            // The same capture twice adds nothing: the second run finds the same events.
            let again = try await QuarryCommand.run([
                "hunt", "sigma", SigmaCLI.rules.appendingPathComponent("known-bad-suffixes.yml").path, "--capture",
                capture,
                "--data", data, "--json", "--sigma-cli", SigmaCLI.sigma,
            ])
            #expect(try JSON.parse(Array(again.output))["total"] == report["total"])
        }
    }
}
