import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import QuarryCore
import QuarrySearch
import QuarryTesting
import Testing

/// A write that was acknowledged survives `kill -9` of the server: the test runs `quarry serve` as a child
/// process, bulk-loads through its HTTP API, kills it in the middle of a bulk request, and reopens the store.
struct DurabilityTests {
    /// Starts `quarry serve` on an ephemeral port and returns the process and its port.
    static func startServer(data: URL) async throws -> (Process, Int) {
        try await QuarryServerProcess.start(
            ["serve", "--data", data.path, "--es-port", "0", "--port", "0", "--log-level", "error"],
            announcement: "Elasticsearch API listening on"
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

    @Test(.timeLimit(.minutes(3))) func acknowledgedBulkWritesSurviveKill9() async throws {
        try await withTemporaryDirectory { directory in
            let (process, port) = try await Self.startServer(data: directory)
            let batches = 8
            let size = 2_000
            let acknowledged = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
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
                try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
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
