import Foundation
import QuarryTesting
import Testing

/// Elastic's official Python client, 8.x (`pip install "elasticsearch>=8,<9"`) and 9.x (in `.build/python-es9`),
/// both installed by scripts/test, against `quarry serve`: info, templates, the bulk helper, search with `_source`
/// filtering, CIDR terms, `search_after` paging, get/update/create, and the client's error classes, authenticated
/// with an API key minted by `quarry es api-key create`; then keys that may only read `packetbeat-*`, invalidated or
/// expired keys, refused as Elasticsearch refuses them.
@Suite(.mayBlock)
struct OfficialClientTests {
    /// The interpreter that has the client of `major` version.
    static func interpreter(major: Int) -> String {
        major == 9 ? ProjectPaths.root.appendingPathComponent(".build/python-es9/bin/python").path : "python3"
    }

    static func clientInstalled(major: Int) -> Bool {
        let check = "import elasticsearch, sys; sys.exit(0 if elasticsearch.__version__[0] == \(major) else 1)"
        guard let (status, _) = try? runToolBlocking("/usr/bin/env", [interpreter(major: major), "-c", check]) else {
            return false
        }
        return status == 0
    }

    @Test(.timeLimit(.minutes(8)), arguments: [8, 9]) func pythonClientWorksUnchanged(major: Int) async throws {
        try #require(
            Self.clientInstalled(major: major),
            "the official client \(major).x is missing (scripts/test installs it: \(Self.interpreter(major: major)))"
        )
        try await withTemporaryDirectory { directory in
            let (server, port) = try await DurabilityTests.startServer(data: directory)
            defer {
                QuarryServerProcess.stop(server)
            }
            let minted = try await QuarryCommand.run([
                "es", "api-key", "create", "--data", directory.path, "--name", "python", "--expiration", "1d",
                "--index", "packetbeat-*", "--privileges", "all", "--cluster-privilege", "monitor",
                "--cluster-privilege", "manage_index_templates",
            ])
            #expect(minted.status == 0, "\(minted.error)")
            let header = try #require(
                minted.text.split(separator: "\n").first { $0.hasPrefix("Authorization: ApiKey ") }
            )
            let encoded = String(header.dropFirst("Authorization: ApiKey ".count))
            let script = ProjectPaths.root.appendingPathComponent("Tests/python/official_client.py")
            let (status, output) = try await runTool(
                "/usr/bin/env",
                [
                    Self.interpreter(major: major), script.path, "http://127.0.0.1:\(port)", encoded,
                    TestElasticUser.password,
                ],
                mergingErrors: true
            )
            let text = String(decoding: output, as: UTF8.self)
            #expect(status == 0, "\(text)")
            #expect(text.contains("passed, 0 failed"), "\(text)")
        }
    }
}
