import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import QuarryCore
import QuarryElastic
import QuarrySearch
import QuarryTesting
import Testing

/// The client for real clusters against Quarry's own Elasticsearch API on loopback: failover, retries after 429,
/// bulk without duplicates, every hit past 10,000, API keys, and TLS with a CA, a pinned fingerprint or none.
@Suite(.mayBlock)
struct ElasticClientClusterTests {
    /// Starts a second real server on loopback in front of `upstream`: it answers the first `rejections` requests
    /// with Elasticsearch's 429 (`es_rejected_execution_exception`, as a node under load does) and forwards the
    /// others unchanged.
    func withRejectingProxy<T: Sendable>(
        upstream: Int,
        rejections: Int,
        _ body: @Sendable (Int, Counter) async throws -> T
    ) async throws -> T {
        let counter = Counter()
        let responder = ProxyResponder(upstream: upstream, rejections: rejections, counter: counter)
        let application = Application(
            responder: responder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        return try await application.test(.live) { proxy in try await body(proxy.port ?? 0, counter) }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.withLock {
                value += 1
                return value
            }
        }
        var count: Int { lock.withLock { value } }
    }

    struct ProxyResponder: HTTPResponder {
        typealias Context = BasicRequestContext
        let upstream: Int
        let rejections: Int
        let counter: Counter

        func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
            if counter.next() <= rejections {
                let body =
                    #"{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution"}],"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}"#
                return Response(status: .tooManyRequests, body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            var forwarded = HTTPClientRequest(url: "http://127.0.0.1:\(upstream)\(request.uri.description)")
            forwarded.method = .init(rawValue: request.method.rawValue)
            for field in request.headers { forwarded.headers.add(name: field.name.rawName, value: field.value) }
            forwarded.body = .bytes(try await request.body.collect(upTo: 100 << 20))
            let answer = try await HTTPClient.shared.execute(forwarded, timeout: .seconds(30))
            let bytes = try await answer.body.collect(upTo: 100 << 20)
            return Response(status: .init(code: Int(answer.status.code)), body: .init(byteBuffer: bytes))
        }
    }

    /// Loads `count` documents `{"n": …}` into `index` directly.
    func load(_ store: EmbeddedStore, index: String, count: Int) throws {
        let items = (0..<count).map { n -> EmbeddedStore.BulkItem in
            let document: JSON = ["n": .int(Int64(n))]
            return .init(
                index: index,
                operation: .index(IndexRequest(id: "d\(n)", source: document.serializedBytes(), document: document))
            )
        }
        #expect(store.bulk(items).allSatisfy { $0.error == nil })
        _ = try store.refresh("_all")
    }

    func client(
        _ nodes: [String],
        credentials: ElasticClient.Credentials? = .basic(username: "elastic", password: TestElasticUser.password),
        tls: ElasticClient.TLS = .systemTrustStore
    ) -> ElasticClient {
        ElasticClient(
            configuration: .init(
                nodes: nodes,
                credentials: credentials,
                tls: tls,
                requestTimeout: .seconds(30),
                retryBackoff: .milliseconds(20)
            ),
            httpClient: ElasticClient.sharedHTTPClient
        )
    }

    @Test(.timeLimit(.minutes(8))) func everyHitPastTenThousandOnceWithFailover() async throws {
        try await withElasticsearchServer { server, store in
            try load(store, index: "events", count: 12_500)
            // The first node is a closed port: the client passes over it.
            let cluster = client(["http://127.0.0.1:1", "http://127.0.0.1:\(server.port ?? 0)"])
            let info = try await cluster.info()
            #expect(info.product == .elasticsearch)
            #expect(info.version.first == 8)
            var seen = Set<Int64>()
            var count = 0
            for try await hit in cluster.hits(index: "events", sort: [["n": "asc"]], pageSize: 3_000) {
                count += 1
                if let n = hit["_source"]?["n"]?.intValue { seen.insert(n) }
                if count == 1 {
                    // Written after the iteration began: the point in time the client opened does not see it
                    // (search_after alone would, at the end).
                    let late: JSON = ["n": 99_999]
                    _ = store.bulk([
                        .init(
                            index: "events",
                            operation: .index(IndexRequest(id: "late", source: late.serializedBytes(), document: late))
                        )
                    ])
                    _ = try store.refresh("_all")
                }
            }
            #expect(count == 12_500)
            #expect(seen.count == 12_500 && !seen.contains(99_999))
            #expect(try await cluster.count(index: "events") == 12_501)
            #expect(try await cluster.count(index: "events", query: ["range": ["n": ["lt": 100]]]) == 100)
            let searches = try await cluster.multiSearch([
                ("events", ["query": ["term": ["n": 7]]]), ("missing", ["query": ["match_all": [:]]]),
            ])
            #expect((try? searches[0].get())?["hits"]?["total"]?["value"] == 1)
            if case .failure(let error) = searches[1] {
                #expect(error.type == "index_not_found_exception")
                #expect(error.status == 404)
            } else {
                Issue.record("a search of a missing index succeeded")
            }
        }
    }

    @Test(.timeLimit(.minutes(8))) func bulkRetriesRejectionsAndNeverDuplicates() async throws {
        try await withElasticsearchServer { server, store in
            try await withRejectingProxy(upstream: server.port ?? 0, rejections: 2) { port, counter in
                let cluster = client(["http://127.0.0.1:\(port)"])
                var operations = (0..<5_000).map { n in
                    ElasticClient.BulkOperation(.index, index: "loaded", document: ["n": .int(Int64(n))])
                }
                // One document the index cannot take: reported, never dropped silently.
                operations.append(.init(.index, index: "Bad-Name", document: ["n": 1]))
                let summary = try await cluster.bulk(operations, batchDocuments: 1_000)
                #expect(summary.succeeded == 5_000)
                #expect(summary.failed.map(\.position) == [5_000])
                #expect(summary.failed.first?.type == "invalid_index_name_exception")
                #expect(counter.count >= 2 + 6, "two rejected requests, then six batches")
                _ = try store.refresh("_all")
                #expect(try await cluster.count(index: "loaded") == 5_000, "the retried requests wrote no copies")
            }
        }
    }

    @Test(.timeLimit(.minutes(8))) func refusalsKeepElasticsearchsErrorAndAreNotRetried() async throws {
        try await withElasticsearchServer { server, _ in
            try await withRejectingProxy(upstream: server.port ?? 0, rejections: 100) { port, counter in
                let cluster = client(["http://127.0.0.1:\(port)"])
                do throws(ElasticError) {
                    _ = try await cluster.count(index: "any")
                    Issue.record("a cluster that always rejects answered")
                } catch {
                    #expect(error.status == 429)
                    #expect(error.type == "es_rejected_execution_exception")
                    #expect(error.rootCauses.first?.type == "es_rejected_execution_exception")
                    #expect(counter.count == 4, "the first attempt and three retries")
                }
            }
            let wrong = client(
                ["http://127.0.0.1:\(server.port ?? 0)"],
                credentials: .basic(username: "elastic", password: "wrong")
            )
            do throws(ElasticError) {
                _ = try await wrong.count(index: "any")
                Issue.record("wrong credentials were accepted")
            } catch {
                #expect(error.status == 401)
                #expect(error.type == "security_exception")
                #expect(!error.isRetryable)
            }
        }
    }

    @Test(.timeLimit(.minutes(8))) func apiKeysCreatedUsedAndInvalidated() async throws {
        try await withElasticsearchServer { server, store in
            try load(store, index: "packetbeat-1", count: 10)
            let url = "http://127.0.0.1:\(server.port ?? 0)"
            let admin = client([url])
            let key = try await admin.createAPIKey(
                name: "hunt",
                expiration: "14d",
                roleDescriptors: ["r": ["indices": [["names": ["packetbeat-*"], "privileges": ["read"]]]]]
            )
            let id = try #require(key["id"]?.stringValue)
            let hunter = client([url], credentials: .apiKey(id: id, key: key["api_key"]?.stringValue ?? ""))
            #expect(try await hunter.authenticate()["api_key"]?["id"] == .string(id))
            #expect(try await hunter.count(index: "packetbeat-*") == 10)
            #expect(try await admin.apiKeys(name: "hunt").count == 1)
            #expect(try await admin.invalidateAPIKeys(ids: [id]) == [id])
            await #expect(throws: ElasticError.rejected) { _ = try await hunter.count(index: "packetbeat-*") }
        }
    }

    /// `quarry serve` with a certificate made here: the client trusts it through the CA file or the CA's pinned
    /// fingerprint, refuses it through the system store or a wrong pin, and `insecure` skips the check.
    @Test(.timeLimit(.minutes(8))) func tlsWithACAFileAPinnedFingerprintOrNone() async throws {
        try await withTemporaryDirectory { directory in
            let certificates = try await TestCertificates(directory: directory)
            let (server, port) = try await QuarryServerProcess.start(
                [
                    "serve", "--data", directory.appendingPathComponent("data").path, "--es-port", "0", "--port", "0",
                    "--es-tls-cert", certificates.serverCertificate, "--es-tls-key", certificates.serverKey,
                    "--log-level", "error",
                ],
                announcement: "Elasticsearch API listening on"
            )
            defer {
                QuarryServerProcess.stop(server)
            }
            let url = "https://127.0.0.1:\(port)"
            let trusted = client([url], tls: .certificateAuthority(file: certificates.authorityCertificate))
            #expect(try await trusted.info().product == .elasticsearch)
            let pinned = client([url], tls: .fingerprint(certificates.authorityFingerprint))
            #expect(try await pinned.count(index: "*") == 0)
            let insecure = client([url], tls: .insecure)
            #expect(try await insecure.authenticate()["username"] == "elastic")
            await #expect(throws: ElasticError.unreachable) { _ = try await client([url]).info() }
            let wrongPin = String(repeating: "ab", count: 32)
            await #expect(throws: ElasticError.untrusted) {
                _ = try await client([url], tls: .fingerprint(wrongPin)).info()
            }
            // Plain HTTP to the HTTPS port gets no answer.
            await #expect(throws: ElasticError.unreachable) {
                _ = try await client(["http://127.0.0.1:\(port)"]).info()
            }
        }
    }
}

/// A certificate authority and a server certificate for 127.0.0.1, made with the `openssl` command.
struct TestCertificates {
    let authorityCertificate: String
    let serverCertificate: String
    let serverKey: String
    /// The CA certificate's SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it.
    let authorityFingerprint: String

    init(directory: URL) async throws {
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        authorityCertificate = path("ca.crt")
        // The chain the server presents holds the CA after the leaf, as Elasticsearch 8's generated http.p12 does.
        serverCertificate = path("chain.crt")
        serverKey = path("server.key")
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(
            toFile: path("san.cnf"),
            atomically: true,
            encoding: .utf8
        )
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await Self.openssl(
            ["req", "-x509"] + curve + [
                "-keyout", path("ca.key"), "-out", authorityCertificate, "-days", "2", "-subj", "/CN=Quarry test CA",
            ]
        )
        try await Self.openssl(
            ["req"] + curve + ["-keyout", serverKey, "-out", path("server.csr"), "-subj", "/CN=127.0.0.1"]
        )
        try await Self.openssl([
            "x509", "-req", "-in", path("server.csr"), "-CA", authorityCertificate, "-CAkey", path("ca.key"),
            "-CAcreateserial", "-out", path("server.crt"), "-days", "2", "-extfile", path("san.cnf"),
        ])
        let chain =
            try String(contentsOfFile: path("server.crt"), encoding: .utf8)
            + String(contentsOfFile: authorityCertificate, encoding: .utf8)
        try chain.write(toFile: serverCertificate, atomically: true, encoding: .utf8)
        let printed = try await Self.openssl(["x509", "-in", authorityCertificate, "-noout", "-fingerprint", "-sha256"])
        authorityFingerprint = String(printed.split(separator: "=").last ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines
        )
    }

    @discardableResult
    static func openssl(_ arguments: [String]) async throws -> String {
        let (status, output) = try await runTool("/usr/bin/env", ["openssl"] + arguments)
        guard status == 0 else {
            throw CertificateFailure(description: "openssl \(arguments.first ?? "") failed (is openssl installed?)")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

struct CertificateFailure: Error, CustomStringConvertible {
    var description: String
}
