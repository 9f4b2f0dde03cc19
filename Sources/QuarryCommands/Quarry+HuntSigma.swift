import ArgumentParser
import Foundation
import QuarryCore
import QuarryElastic
import QuarryElasticsearchAPI
import QuarrySearch
import Yams

extension Quarry.Hunt {
    /// `quarry hunt sigma RULE`: a Sigma rule, converted to Lucene by sigma-cli, run against the store.
    struct Sigma: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sigma",
            abstract: "Run a Sigma rule against the store and list the events it matches.",
            discussion: """
                RULE is a Sigma rule (.yml/.yaml), converted with sigma-cli (`sigma convert -t lucene \
                --without-pipeline RULE`, from `pip install sigma-cli pysigma-backend-elasticsearch`), or a file \
                holding a query already converted to Lucene. Keyword values compare without case, as Sigma \
                specifies (names on the wire come in any case); --match-case runs the query as Elasticsearch would, \
                with case. The query runs over INDEX \
                (packetbeat-* by default), in the window --since/--from/--to give: the last 24 hours by default, \
                or with --capture, the whole capture after decoding it into the store. Rules name ECS fields as \
                Packetbeat writes them (dns.question.name, dns.question.type, client.ip, …).

                Examples:
                  quarry hunt sigma sigma/dns/known-bad-suffixes.yml --capture incident.pcap
                  quarry hunt sigma sigma/dns/txt-abuse.yml --since 7d --json
                  quarry hunt sigma converted.lucene --from now-2d --to now-1d

                Exit status: 0 when events matched, 2 when none did, 1 on failure (a rule sigma-cli cannot \
                convert, a query the store refuses).
                """
        )
        @Argument(help: "A Sigma rule (.yml/.yaml) or a file with a Lucene query.") var rule: String
        @Option(name: .long, help: "Look back this far (30m, 4h, 2d); default 24h without --capture.") var since:
            String?
        @Option(name: .long, help: "Window start: ISO 8601 or Elasticsearch date math.") var from: String?
        @Option(name: .long, help: "Window end: ISO 8601 or Elasticsearch date math (default now).") var to: String?
        @Option(name: .long, parsing: .upToNextOption, help: "pcap/pcapng files to ingest first.") var capture:
            [String] = []
        @Option(name: .long, help: "Index pattern (default packetbeat-*).") var index = "packetbeat-*"
        @Option(name: .long, help: "The sigma executable (default QUARRY_SIGMA_CLI, else `sigma` on PATH).")
        var sigmaCli: String?
        @Option(name: .long, help: "List at most this many events (default 100; the total is always counted).")
        var size = 100
        @Flag(name: .long, help: "Print the rule, its query and the matching events as JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func validate() throws {
            if since != nil && from != nil { throw ValidationError("give --since or --from, not both") }
            guard (0...10_000).contains(size) else { throw ValidationError("--size must be between 0 and 10000") }
            if let since,
                !["s", "m", "h", "d", "w"].contains(since.last.map(String.init) ?? "")
                    || Int(since.dropLast()) == nil
            {
                throw ValidationError("--since takes a whole number and a unit (Elasticsearch date math): 30m, 4h, 2d")
            }
        }

        @Flag(
            name: .long,
            help:
                "Compare keyword values with case, as Elasticsearch runs the converted query (default: without, as Sigma specifies)."
        )
        var matchCase = false

        /// Where the hunt searches: the `quarry serve` holding the data directory, or the embedded store in process.
        private enum Target {
            case served(ServedDataDirectory)
            case embedded(EmbeddedStore)

            func perform(_ method: ESRequest.Method, _ target: String, body: JSON? = nil) async throws -> JSON {
                switch self {
                case .served(let served):
                    return try await served.perform(method == .get ? .get : .post, target, body: body)
                case .embedded(let store):
                    let answer = ElasticsearchAPI(store: store).handle(
                        try ESRequest(method: method, target: target, body: body?.serializedBytes() ?? [])
                    )
                    guard let json = answer.json, answer.status < 400 else {
                        throw CommandFailure("the store refused \(target): \(answer.json?.serialized() ?? "no answer")")
                    }
                    return json
                }
            }
        }

        func run() async throws {
            let (title, lucene) = try Self.luceneQuery(rule: rule, sigmaCLI: sigmaCli)
            if !json { printError("Lucene: \(lucene)") }
            var window: (from: String, to: String)? =
                capture.isEmpty || since != nil || from != nil ? ("now-\(since ?? "24h")", to ?? "now") : nil
            if let from { window?.from = from }
            let target: Target
            var embedded: EmbeddedStore?
            defer { try? embedded?.close() }
            if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                if !capture.isEmpty, let range = try await CaptureLoading.load(capture, into: served, quiet: json) {
                    window = window ?? CaptureLoading.window(range)
                }
                target = .served(served)
            } else {
                let directory = capture.isEmpty ? try store.existingDataDirectory() : store.dataDirectory
                let opened = try EmbeddedStore(configuration: .init(dataDirectory: directory))
                embedded = opened
                if !capture.isEmpty, let range = try CaptureLoading.load(capture, into: opened, quiet: json) {
                    window = window ?? CaptureLoading.window(range)
                }
                target = .embedded(opened)
            }
            let segment = "/" + ServedDataDirectory.pathSegment(index)
            var query: Query
            do {
                query = try Query.parse(["query_string": ["query": .string(lucene), "analyze_wildcard": true]])
            } catch {
                // The cause says where reading stopped (`expected ')'`).
                let why = ([error.reason] + error.causedBy.map(\.reason)).joined(separator: ": ")
                throw CommandFailure("the rule's query is not Lucene this store reads: \(why)")
            }
            if !matchCase {
                let caps = try await target.perform(.get, segment + "/_field_caps?fields=*&allow_no_indices=true")
                query = query.ignoringCase(onKeywords: Self.keywordFields(caps))
            }
            let response = try await target.perform(.post, segment + "/_search", body: body(query, window: window))
            let hits = response["hits"]?["hits"]?.arrayValue ?? []
            let total = response["hits"]?["total"]?["value"]?.intValue ?? Int64(hits.count)
            if json {
                var output: JSONObject = ["rule": title.map(JSON.string) ?? .null, "query": .string(lucene)]
                output["window"] = window.map { ["from": .string($0.from), "to": .string($0.to)] } ?? .null
                output["total"] = .int(total)
                output["hits"] = .array(
                    hits.map { hit in
                        [
                            "_index": hit["_index"] ?? .null, "_id": hit["_id"] ?? .null,
                            "_source": hit["_source"] ?? .null,
                        ]
                    }
                )
                print(JSON.object(output).serialized(pretty: true))
            } else {
                printTable(title: title, hits: hits, total: total, window: window)
            }
            if total == 0 { throw ExitCode(2) }
        }

        /// The fields `_field_caps` says are keywords in every index that has them.
        static func keywordFields(_ caps: JSON) -> Set<String> {
            let keywordTypes: Set<String> = ["keyword", "constant_keyword", "wildcard"]
            var result = Set<String>()
            for (field, types) in caps["fields"]?.objectValue ?? [:] {
                let names = types.objectValue?.map(\.key) ?? []
                if !names.isEmpty, names.allSatisfy(keywordTypes.contains) { result.insert(field) }
            }
            return result
        }

        /// The search: the rule's query over the window, oldest first.
        private func body(_ query: Query, window: (from: String, to: String)?) -> JSON {
            var filters: [JSON] = [query.json]
            if let window {
                filters.append(["range": ["@timestamp": ["gte": .string(window.from), "lt": .string(window.to)]]])
            }
            return [
                "size": .int(Int64(size)), "track_total_hits": true, "sort": [["@timestamp": "asc"]],
                "query": ["bool": ["filter": .array(filters)]],
            ]
        }

        /// The rule's title (when it is a Sigma rule) and its Lucene query.
        static func luceneQuery(rule: String, sigmaCLI: String?) throws -> (title: String?, query: String) {
            guard FileManager.default.fileExists(atPath: rule) else { throw CommandFailure("\(rule): no such file") }
            let text = try String(contentsOfFile: rule, encoding: .utf8)
            let isSigma = [".yml", ".yaml"].contains { rule.lowercased().hasSuffix($0) }
            guard isSigma else {
                let query = text.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !query.isEmpty else { throw CommandFailure("\(rule) holds no query") }
                return (nil, query)
            }
            let title = (try? Yams.load(yaml: text) as? [String: Any])?["title"] as? String
            guard let executable = sigmaExecutable(sigmaCLI) else {
                throw CommandFailure(
                    "sigma-cli is not installed: pip install sigma-cli pysigma-backend-elasticsearch, or pass "
                        + "--sigma-cli PATH, or convert the rule yourself (sigma convert -t lucene --without-pipeline "
                        + "\(rule) > rule.lucene) and pass that file"
                )
            }
            let (status, output, errors) = try runProcess(
                executable,
                ["convert", "-t", "lucene", "--without-pipeline", rule]
            )
            guard status == 0 else {
                // sigma-cli prints a Python traceback: its last line says what was wrong.
                let reason = (errors.isEmpty ? output : errors).split(separator: "\n").last.map(String.init) ?? ""
                throw CommandFailure("sigma-cli could not convert \(rule): \(reason)")
            }
            // One line per query; a rule whose condition makes several is any of them.
            let queries = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty && $0 != "Parsing Sigma rules"
            }
            guard !queries.isEmpty else { throw CommandFailure("sigma-cli made no query of \(rule)") }
            return (title, queries.count == 1 ? queries[0] : queries.map { "(\($0))" }.joined(separator: " OR "))
        }

        /// sigma-cli: the path given, QUARRY_SIGMA_CLI, or `sigma` on PATH.
        static func sigmaExecutable(_ given: String?) -> String? {
            if let given { return given }
            if let configured = ProcessInfo.processInfo.environment["QUARRY_SIGMA_CLI"], !configured.isEmpty {
                return configured
            }
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/sigma"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
            return nil
        }

        /// Runs `executable` to its end: status, standard output, standard error (kept in a file so that neither
        /// pipe can fill while the other is read).
        static func runProcess(_ executable: String, _ arguments: [String]) throws -> (Int32, String, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let output = Pipe()
            let errors = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-sigma-\(UUID()).err")
            guard FileManager.default.createFile(atPath: errors.path, contents: nil) else {
                throw CommandFailure("could not create a temporary file in \(errors.deletingLastPathComponent().path)")
            }
            defer { try? FileManager.default.removeItem(at: errors) }
            let errorHandle = try FileHandle(forWritingTo: errors)
            process.standardOutput = output
            process.standardError = errorHandle
            do {
                try process.run()
            } catch {
                throw CommandFailure("could not run \(executable): \(error.localizedDescription)")
            }
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            try errorHandle.close()
            let errorText = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            return (
                process.terminationStatus, String(decoding: data, as: UTF8.self),
                errorText.trimmingCharacters(in: .whitespacesAndNewlines)
            )
        }

        private func printTable(title: String?, hits: [JSON], total: Int64, window: (from: String, to: String)?) {
            let scope = window.map { "\($0.from) to \($0.to)" } ?? "the whole store"
            print("Sigma hunt: \(title ?? rule), \(scope)")
            print(
                "  \(total) matching event\(total == 1 ? "" : "s")\(total > hits.count ? ", the first \(hits.count) listed" : "")\n"
            )
            guard !hits.isEmpty else { return }
            print("time                         client           question / destination                     type")
            for hit in hits {
                let source = hit["_source"] ?? .null
                let client = source["client"]?["ip"]?.stringValue ?? source["source"]?["ip"]?.stringValue ?? ""
                let question =
                    source["dns"]?["question"]?["name"]?.stringValue
                    ?? [
                        source["destination"]?["ip"]?.stringValue,
                        source["destination"]?["port"].map { $0.serialized() },
                    ]
                    .compactMap { $0 }.joined(separator: ":")
                let type =
                    source["dns"]?["question"]?["type"]?.stringValue ?? source["network"]?["transport"]?.stringValue
                    ?? ""
                print(
                    [
                        (source["@timestamp"]?.stringValue ?? "").padding(toLength: 28, withPad: " ", startingAt: 0),
                        client.padding(toLength: 16, withPad: " ", startingAt: 0),
                        question.padding(toLength: 42, withPad: " ", startingAt: 0), type,
                    ].joined(separator: " ")
                )
            }
        }
    }
}
