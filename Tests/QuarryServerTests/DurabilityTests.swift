import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// A write that was acknowledged survives `kill -9` of the server: the test runs `quarry serve` as a child
/// process, bulk-loads through its HTTP API, kills it in the middle of a bulk request, and reopens the store.
@Suite(.mayBlock)
struct DurabilityTests {
    /// Starts `quarry serve` on an ephemeral port and returns the process and its port.
    static func startServer(data: URL) async throws -> (Process, Int) {
        try await QuarryServerProcess.start(
            ["serve", "--data", data.path, "--es-port", "0", "--port", "0", "--log-level", "error"],
            announcement: "Elasticsearch API listening on"
        )
    }

    /// A client of the server on `port` that waits up to two minutes for an answer (HummingbirdTesting's default is
    /// 15 s): the child process shares two cores with the rest of the suite, and the wait only guards against a hang.
    static func withClient<Value: Sendable>(
        port: Int,
        _ body: @escaping @Sendable (TestClient) async throws -> Value
    ) async throws -> Value {
        try await TestClient.withClient(
            host: "127.0.0.1",
            port: port,
            configuration: .init(timeout: .seconds(120)),
            operation: body
        )
    }

    static func bulkBody(batch: Int, size: Int) -> String {
        var body = ""
        for n in 0..<size {
            body += #"{"index":{"_index":"durable","_id":"b\#(batch)-\#(n)"}}"# + "\n"
            body += #"{"batch":\#(batch),"n":\#(n),"text":"payload \#(n) of batch \#(batch)"}"# + "\n"
        }
        return body
    }

    @Test(.timeLimit(.minutes(8))) func acknowledgedBulkWritesSurviveKill9() async throws {
        try await withTemporaryDirectory { directory in
            let (process, port) = try await Self.startServer(data: directory)
            let batches = 8
            let size = 2_000
            let acknowledged = try await DurabilityTests.withClient(port: port) { client in
                var acknowledged: [Int] = []
                for batch in 0..<batches {
                    let response = try await client.post(
                        "/_bulk",
                        headers: [.contentType: "application/x-ndjson", .authorization: TestElasticUser.authorization],
                        body: ByteBuffer(string: Self.bulkBody(batch: batch, size: size))
                    )
                    let json = try JSON.parse(Array(buffer: response.body ?? ByteBuffer()))
                    if response.status == .ok, json["errors"] == false { acknowledged.append(batch) }
                }
                return acknowledged
            }
            #expect(acknowledged.count == batches)
            // One more, much larger bulk request, killed while the server works on it.
            let inFlight = Task {
                try await DurabilityTests.withClient(port: port) { client in
                    _ = try await client.post(
                        "/_bulk",
                        headers: [.contentType: "application/x-ndjson", .authorization: TestElasticUser.authorization],
                        body: ByteBuffer(string: Self.bulkBody(batch: 99, size: 40_000))
                    )
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = try? await inFlight.value
            #expect(process.terminationReason == .uncaughtSignal)

            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let count = try store.count("durable", query: .matchAll(boost: 1))
            #expect(count >= batches * size, "every acknowledged document is there (the killed request may add some)")
            for batch in acknowledged {
                let query = Query.term(field: "batch", value: .int(Int64(batch)), caseInsensitive: false, boost: 1)
                #expect(try store.count("durable", query: query) == size)
                #expect(try store.get(index: "durable", id: "b\(batch)-\(size - 1)") != nil)
            }
            let partial = try store.count(
                "durable",
                query: .term(field: "batch", value: 99, caseInsensitive: false, boost: 1)
            )
            #expect(partial == 0 || partial == 40_000, "the killed request's transaction is all or nothing")
        }
    }
}

/// `kill -9` at random moments while bulk requests, flushes and merges run, many times over one data directory:
/// every acknowledged document is there exactly once, and a killed request is there whole or not at all.
@Suite(.mayBlock)
struct KillDuringMergeTests {
    static let size = 200

    /// A bulk request of `size` documents without ids (so that a replayed or half-applied request would show as
    /// duplicates), each with a unique `key`.
    static func bulkBody(batch: Int) -> String {
        var body = ""
        for n in 0..<size {
            body += #"{"index":{"_index":"merged"}}"# + "\n"
            body += #"{"batch":\#(batch),"n":\#(n),"key":"\#(batch)-\#(n)","text":"row \#(n) of \#(batch)"}"# + "\n"
        }
        return body
    }

    static func post(_ client: TestClient, _ path: String, _ body: String) async throws -> Bool {
        let response = try await client.post(
            path,
            headers: [.contentType: "application/x-ndjson", .authorization: TestElasticUser.authorization],
            body: ByteBuffer(string: body)
        )
        let json = try? JSON.parse(Array(buffer: response.body ?? ByteBuffer()))
        return response.status == .ok && json?["errors"] != true
    }

    /// Opens the directory in this process and checks every batch.
    static func verify(_ directory: URL, acknowledged: Set<Int>, sent: Int, _ context: String) throws {
        let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
        defer { try? store.close() }
        var total = 0
        for batch in 0..<sent {
            let count = try store.count(
                "merged",
                query: .term(field: "batch", value: .int(Int64(batch)), caseInsensitive: false, boost: 1)
            )
            total += count
            if acknowledged.contains(batch) {
                #expect(count == size, "\(context): acknowledged batch \(batch) has \(count) documents")
            } else {
                #expect(count == 0 || count == size, "\(context): killed batch \(batch) has \(count) documents")
            }
        }
        #expect(try store.count("merged", query: .matchAll(boost: 1)) == total, "\(context): total")
        let response = try store.search(
            "merged",
            SearchRequest(body: ["size": 0, "aggs": ["keys": ["terms": ["field": "key.keyword", "size": 1]]]])
        ).responseBody()
        let most = response["aggregations"]?["keys"]?["buckets"]?[0]?["doc_count"]?.intValue
        #expect(most == nil || most == 1, "\(context): no document twice")
    }

    /// How many segments have rows but are not registered: merges the kill interrupted (removed at the next open).
    static func interruptedMerges(_ directory: URL) throws -> Int {
        let indices = directory.appendingPathComponent("indices")
        guard
            let file = try FileManager.default.contentsOfDirectory(at: indices, includingPropertiesForKeys: nil)
                .first(where: { $0.lastPathComponent.hasSuffix(".segments.sqlite") })
        else { return 0 }
        let database = try DatabaseQueue(path: file.path)
        defer { try? database.close() }
        return try database.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(DISTINCT segment) FROM segment_terms
                    WHERE segment NOT IN (SELECT id FROM segments)
                    """
            ) ?? 0
        }
    }

    @Test(.timeLimit(.minutes(15))) func kill9DuringBulkAndMergesLosesAndDuplicatesNothing() async throws {
        let iterations = Int(ProcessInfo.processInfo.environment["QUARRY_KILL_ITERATIONS"] ?? "") ?? 100
        try await withTemporaryDirectory { directory in
            var acknowledged = Set<Int>()
            var sent = 0
            var killedDuringMerge = 0
            var interrupted = 0
            for iteration in 0..<iterations {
                let (process, port) = try await DurabilityTests.startServer(data: directory)
                let first = sent
                let inFlight = sent + 2
                let acked = try await DurabilityTests.withClient(port: port) { client in
                    // Two batches acknowledged, each flushed into a segment of its own so that merges start.
                    var acked: [Int] = []
                    for batch in first..<first + 2 {
                        if try await Self.post(client, "/_bulk", Self.bulkBody(batch: batch)) { acked.append(batch) }
                        _ = try await Self.post(client, "/merged/_flush", "")
                    }
                    return acked
                }
                acknowledged.formUnion(acked)
                sent += 3
                // In flight when the process dies: a bulk request and, every other time, a forced merge.
                let bulk = Task {
                    try await DurabilityTests.withClient(port: port) { client in
                        try await Self.post(client, "/_bulk", Self.bulkBody(batch: inFlight))
                    }
                }
                let merge = Task {
                    guard iteration % 2 == 0 else { return false }
                    return try await DurabilityTests.withClient(port: port) { client in
                        try await Self.post(client, "/merged/_forcemerge?max_num_segments=1", "")
                    }
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0..<120)))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                if (try? await bulk.value) == true { acknowledged.insert(inFlight) }
                if iteration % 2 == 0, (try? await merge.value) != true { killedDuringMerge += 1 }
                interrupted += try Self.interruptedMerges(directory)
                if iteration % 25 == 24 {
                    try Self.verify(directory, acknowledged: acknowledged, sent: sent, "after \(iteration + 1) kills")
                }
            }
            try Self.verify(directory, acknowledged: acknowledged, sent: sent, "at the end")
            #expect(acknowledged.count >= 2 * iterations)
            #expect(iterations < 10 || killedDuringMerge > 0, "some kills landed during a forced merge")
            #expect(iterations < 50 || interrupted > 0, "some kills left a merge half written")
            print(
                "kill -9: \(iterations) kills, \(killedDuringMerge) during a forced merge request, \(interrupted) merges half written"
            )
        }
    }
}
