import Foundation
import QuarryCore
import QuarryTesting
import Testing

/// `quarry users`, `quarry es` and `quarry ingest --to` as a user runs them, beside a running `quarry serve`.
@Suite(.serialized, .mayBlock) struct SecurityCommandsTests {
    /// `GET path` on the server as `authorization`, returning the status and body.
    func get(_ port: Int, _ path: String, authorization: String) async throws -> RawHTTP.Reply {
        let head =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: \(authorization)\r\n\r\n"
        return try await RawHTTP.exchange(port: port, Array(head.utf8))
    }

    @Test(.timeLimit(.minutes(8))) func usersAndKeysAreManagedBesideARunningServer() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            // On a directory serve never opened, reset-password creates elastic and prints a generated password.
            let reset = try await QuarryCommand.run(["users", "reset-password", "elastic", "--data", data])
            #expect(reset.status == 0, "\(reset.error)")
            let generated = try #require(
                reset.text.split(separator: "\n").last?.split(separator: " ").last.map(String.init)
            )
            #expect(generated.count == 20)

            let (server, port) = try await QuarryServerProcess.start(
                ["serve", "--data", data, "--es-port", "0", "--port", "0", "--log-level", "error"],
                announcement: "Elasticsearch API listening on"
            )
            defer {
                QuarryServerProcess.stop(server)
            }
            let elastic = TestElasticUser.basic("elastic", generated)
            await #expect(try get(port, "/_security/_authenticate", authorization: elastic).status == 200)

            let added = try await QuarryCommand.run(
                ["users", "add", "ana", "--role", "viewer", "--data", data],
                input: "ana-password\n"
            )
            #expect(added.status == 0, "\(added.error)")
            #expect(!added.text.contains("ana-password"), "a password given on standard input is not echoed")
            let ana = TestElasticUser.basic("ana", "ana-password")
            await #expect(try get(port, "/_security/_authenticate", authorization: ana).status == 200)
            let listed = try await QuarryCommand.run(["users", "list", "--data", data])
            #expect(listed.text.contains("ana") && listed.text.contains("viewer") && listed.text.contains("elastic"))
            #expect(try await QuarryCommand.run(["users", "remove", "elastic", "--data", data]).status != 0)

            let created = try await QuarryCommand.run([
                "es", "api-key", "create", "--name", "hunts", "--expiration", "14d", "--index", "packetbeat-*",
                "--privileges", "read", "--data", data,
            ])
            #expect(created.status == 0, "\(created.error)")
            let lines = created.text.split(separator: "\n").map(String.init)
            let header = try #require(lines.first { $0.hasPrefix("Authorization: ApiKey ") })
            let value = String(header.dropFirst("Authorization: ".count))
            let id = try #require(lines.first { $0.hasPrefix("id:") }?.split(separator: " ").last.map(String.init))
            let secret = try #require(
                lines.first { $0.hasPrefix("api_key:") }?.split(separator: " ").last.map(String.init)
            )
            let token = try await QuarryCommand.run(["es", "token", "\(id):\(secret)"])
            #expect("ApiKey " + token.text.trimmingCharacters(in: .whitespacesAndNewlines) == value)
            await #expect(try get(port, "/packetbeat-*/_search", authorization: value).status == 200)
            await #expect(try get(port, "/other/_search", authorization: value).status == 403)

            let ping = try await QuarryCommand.run(
                ["es", "ping", "--cluster", "http://127.0.0.1:\(port)"],
                environment: ["QUARRY_ES_API_KEY": "\(id):\(secret)"]
            )
            #expect(ping.status == 0, "\(ping.error)")
            #expect(ping.text.contains("may not read its version"), "the key lacks monitor, as on Elasticsearch")
            #expect(ping.text.contains("authenticated as elastic with API key \(id)"), "\(ping.text)")
            let adminPing = try await QuarryCommand.run(
                ["es", "ping", "--cluster", "http://127.0.0.1:\(port)"],
                environment: ["QUARRY_ES_USERNAME": "elastic", "QUARRY_ES_PASSWORD": generated]
            )
            #expect(adminPing.text.contains("elasticsearch 8.17.0, cluster quarry"), "\(adminPing.text)")

            #expect(try await QuarryCommand.run(["es", "api-key", "invalidate", id, "--data", data]).status == 0)
            try await Task.sleep(for: .milliseconds(1100))  // the server notices another process's change within 1 s
            await #expect(try get(port, "/packetbeat-*/_search", authorization: value).status == 401)
            let keys = try await QuarryCommand.run(["es", "api-key", "list", "--data", data])
            #expect(keys.text.contains("hunts") && keys.text.contains("invalidated"))
        }
    }

    /// `quarry ingest --to` ships a capture to a cluster's `_bulk` (here `quarry serve`, authenticated by the
    /// environment's credentials), and a second run stores nothing new.
    @Test(.timeLimit(.minutes(8))) func ingestToAClusterStoresEachEventOnce() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("sample.pcap").path
            #expect(
                try await QuarryCommand.run(["sample", "capture", "--out", capture, "--hosts", "3", "--minutes", "2"])
                    .status
                    == 0
            )
            let (server, port) = try await QuarryServerProcess.start(
                [
                    "serve", "--data", directory.appendingPathComponent("data").path, "--es-port", "0", "--port", "0",
                    "--log-level",
                    "error",
                ],
                announcement: "Elasticsearch API listening on"
            )
            defer {
                QuarryServerProcess.stop(server)
            }
            let environment = ["QUARRY_ES_USERNAME": "elastic", "QUARRY_ES_PASSWORD": TestElasticUser.password]
            let url = "http://127.0.0.1:\(port)"
            let first = try await QuarryCommand.run(["ingest", capture, "--to", url], environment: environment)
            #expect(first.status == 0, "\(first.error)")
            let stored = try #require(
                first.error.firstMatch(of: /(\d+) documents stored \((\d+) new, 0 already there\)/)
            )
            #expect(stored.1 == stored.2)
            let second = try await QuarryCommand.run(["ingest", capture, "--to", url], environment: environment)
            #expect(
                second.error.contains("\(stored.1) documents stored (0 new, \(stored.1) already there)"),
                "\(second.error)"
            )
            let count = try await get(port, "/packetbeat-*/_count", authorization: TestElasticUser.authorization)
            #expect(try JSON.parse(count.body)["count"] == .int(Int64(stored.1)!))
            let refused = try await QuarryCommand.run(["ingest", capture, "--to", url])
            #expect(refused.status == 1)
            #expect(refused.error.contains("401"))
        }
    }

    @Test(.timeLimit(.minutes(8))) func theStoreCommandsGoThroughARunningServer() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            let capture = directory.appendingPathComponent("net.pcap").path
            #expect(
                try await QuarryCommand.run(["sample", "capture", "--out", capture, "--hosts", "5", "--minutes", "5"])
                    .status
                    == 0
            )
            let (server, port) = try await QuarryServerProcess.start(
                ["serve", "--data", data, "--es-port", "0", "--port", "0", "--log-level", "error"],
                announcement: "Elasticsearch API listening on"
            )
            // The server leaves its URL and a key for the commands, readable by its owner only.
            let file = directory.appendingPathComponent("data/serve.json").path
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let handoff = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
            #expect(handoff["elasticsearch"]?.stringValue == "http://127.0.0.1:\(port)")
            let key = try #require(handoff["api_key"]?.stringValue)

            let ingested = try await QuarryCommand.run(["ingest", capture, "--data", data])
            #expect(ingested.status == 0, "\(ingested.error)")
            #expect(ingested.error.contains("going through http://127.0.0.1:\(port)"))
            let served = try await QuarryCommand.run(["index", "list", "--data", data])
            #expect(served.status == 0, "\(served.error)")
            let query = #"{"size": 3, "sort": [{"@timestamp": "asc"}, "_doc"], "query": {"term": {"type": "dns"}}}"#
            let searched = try await QuarryCommand.run(["search", "packetbeat-*", "--query", query, "--data", data])
            #expect(searched.status == 0, "\(searched.error)")
            // Index commands go through it too.
            let created = try await QuarryCommand.run(["index", "create", "logs", "--data", data])
            #expect(created.status == 0, "\(created.error)")
            let template = try await QuarryCommand.run([
                "index", "template", "logs", "--body", #"{"index_patterns": ["logs-*"]}"#, "--data", data,
            ])
            #expect(template.status == 0, "\(template.error)")
            let byPattern = try await QuarryCommand.run(["index", "delete", "log*", "--data", data])
            #expect(byPattern.status == 1)
            let deleted = try await QuarryCommand.run(["index", "delete", "log*", "--yes", "--data", data])
            #expect(deleted.status == 0, "\(deleted.error)")
            #expect(try JSON.parse(deleted.text)["deleted"] == ["logs"])

            // Hunts and story runs are run by the server's engine (one engine per story database), printed as in
            // process.
            let hunt = [
                "hunt", "dns", "Update.Evil-CDN.example.", "--capture", capture, "--resolver", "none", "--json",
                "--data", data,
            ]
            let servedHunt = try await QuarryCommand.run(hunt)
            #expect(servedHunt.status == 0, "\(servedHunt.error)")
            #expect(servedHunt.error.contains("quarry serve (pid \(server.processIdentifier)) has this data directory"))
            let story = directory.appendingPathComponent("echo.yaml").path
            try """
            name: Echo
            agents:
              - {name: Start, type: webhook}
              - {name: Shape, type: transform, receives_from: Start, options: {payload: {host: "{{ .start.host | upcase }}"}}}
            """.write(toFile: story, atomically: true, encoding: .utf8)
            let storyRun = ["story", "run", story, "--input", "host=web-1", "--json", "--data", data]
            let servedRun = try await QuarryCommand.run(storyRun)
            #expect(servedRun.status == 0, "\(servedRun.error)")
            let servedRecord = try JSON.parse(servedRun.text)
            #expect(servedRecord["exit_event"]?["payload"] == ["host": "WEB-1"])
            #expect(servedRecord["events"]?.arrayValue?.count == 2)
            #expect(servedRecord["timeline"]?.arrayValue?.count == 2)

            // A clean stop takes the file and the key away; the commands then open the store themselves, with the
            // same output.
            QuarryServerProcess.stop(server, signal: SIGINT)
            #expect(!FileManager.default.fileExists(atPath: file))
            let local = try await QuarryCommand.run(["index", "list", "--data", data])
            // Names and counts alike (the size moves: the store settles its files when it closes).
            let columns = { (text: String) in text.split(separator: "\n").map { $0.split(separator: " ").dropLast() } }
            #expect(columns(local.text) == columns(served.text))
            let localSearch = try await QuarryCommand.run(["search", "packetbeat-*", "--query", query, "--data", data])
            let hits = { (text: String) in try JSON.parse(text)["hits"]?["hits"] }
            #expect(try hits(localSearch.text) == hits(searched.text))
            let localHunt = try await QuarryCommand.run(hunt)
            #expect(localHunt.status == 0, "\(localHunt.error)")
            let report = { (text: String) throws -> JSON in
                var object = try JSON.parse(text).objectValue ?? [:]
                object["run"] = nil
                return .object(object)
            }
            #expect(try report(localHunt.text) == report(servedHunt.text))
            #expect(try (report(servedHunt.text)["hosts"]?.arrayValue?.count ?? 0) > 0)
            let localRun = try JSON.parse(try await QuarryCommand.run(storyRun).text)
            #expect(localRun["run"]?["status"] == servedRecord["run"]?["status"])
            #expect(localRun["exit_event"] == servedRecord["exit_event"])
            let steps = { (record: JSON) in record["timeline"]?.arrayValue?.map { [$0["agent"], $0["outcome"]] } }
            #expect(steps(localRun) == steps(servedRecord))
            let (again, againPort) = try await QuarryServerProcess.start(
                ["serve", "--data", data, "--es-port", "0", "--port", "0", "--log-level", "error"],
                announcement: "Elasticsearch API listening on"
            )
            defer {
                QuarryServerProcess.stop(again)
            }
            await #expect(try get(againPort, "/_security/_authenticate", authorization: "ApiKey \(key)").status == 401)
        }
    }
}
