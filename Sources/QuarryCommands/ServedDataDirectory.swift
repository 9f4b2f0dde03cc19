import Foundation
import QuarryCore
import QuarryElastic
import QuarryElasticsearchAPI

/// What a running `quarry serve` leaves in its data directory for the commands run beside it: `serve.json`, readable
/// by its owner only, with the server's process id, its URLs, an API key for its Elasticsearch API and a token for
/// its web API, both minted for this purpose as the `elastic` user (local: the server listens on loopback unless
/// told otherwise). Commands that use the store (`search`, `index`, `ingest`, `bulk`) find it and go through the
/// Elasticsearch API; commands that run stories (`story run`, `hunt dns`) have the server run them through its web
/// API, since one story database is run by one engine. The credentials are invalidated and the file removed when
/// `serve` stops; a file left by a killed server is replaced, and its credentials invalidated, when the next `serve`
/// starts, and ignored meanwhile (its process is gone).
struct ServedDataDirectory {
    static let fileName = "serve.json"
    static let keyName = "quarry-cli-local"

    var pid: Int32
    var elasticsearch: String
    var web: String?
    /// `base64(id:api_key)`, nil when the API runs without authentication.
    var apiKey: String?
    var apiKeyID: String?
    /// `Authorization: Bearer` for the web API.
    var webToken: String?

    var json: JSON {
        var object: JSONObject = ["pid": .int(Int64(pid)), "elasticsearch": .string(elasticsearch)]
        if let web { object["web"] = .string(web) }
        if let apiKey { object["api_key"] = .string(apiKey) }
        if let apiKeyID { object["api_key_id"] = .string(apiKeyID) }
        if let webToken { object["web_token"] = .string(webToken) }
        return .object(object)
    }

    static func file(in directory: URL) -> URL { directory.appendingPathComponent(fileName) }

    /// The file as written, whether or not its server still runs.
    static func read(in directory: URL) -> ServedDataDirectory? {
        guard let data = FileManager.default.contents(atPath: file(in: directory).path),
            let json = try? JSON.parse(Array(data)), let pid = json["pid"]?.intValue,
            let elasticsearch = json["elasticsearch"]?.stringValue
        else { return nil }
        return ServedDataDirectory(
            pid: Int32(clamping: pid),
            elasticsearch: elasticsearch,
            web: json["web"]?.stringValue,
            apiKey: json["api_key"]?.stringValue,
            apiKeyID: json["api_key_id"]?.stringValue,
            webToken: json["web_token"]?.stringValue
        )
    }

    /// The server running on `directory`, if one is: its file, and its process alive.
    static func running(in directory: URL) -> ServedDataDirectory? {
        guard let served = read(in: directory), served.pid > 0, kill(served.pid, 0) == 0 || errno == EPERM else {
            return nil
        }
        return served
    }

    /// Writes the file, created 0600 before anything is in it.
    func write(in directory: URL) throws {
        let path = Self.file(in: directory).path
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CommandFailure("cannot write \(path)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data(json.serialized(pretty: true).utf8))
        try handle.close()
    }

    /// A client of the server's Elasticsearch API, authenticated with the file's key.
    func client() -> ElasticClient {
        ElasticClient(
            configuration: .init(nodes: [elasticsearch], tls: .insecure),
            authorization: apiKey.map { "ApiKey " + $0 },
            httpClient: ElasticClient.sharedHTTPClient
        )
    }

    /// A client of the server's web API (`/api/v1`), authenticated with the file's token; its errors carry the
    /// API's message.
    func webClient() throws -> ElasticClient {
        guard let web, let webToken else {
            throw CommandFailure(
                "quarry serve (pid \(pid)) left no web API address in \(Self.fileName): restart it with this version"
            )
        }
        return ElasticClient(
            configuration: .init(nodes: [web], tls: .insecure, retries: 0),
            authorization: "Bearer " + webToken,
            httpClient: ElasticClient.sharedHTTPClient
        )
    }

    /// `method path` on the server's Elasticsearch API; a refusal becomes the command's error, naming the server.
    func perform(_ method: ElasticClient.Method, _ path: String, body: JSON? = nil) async throws -> JSON {
        do {
            return try await client().perform(method, path, body: body)
        } catch {
            throw CommandFailure("\(error) (through quarry serve, pid \(pid))")
        }
    }

    /// An index name or expression as one segment of a request path.
    static func pathSegment(_ indices: String) -> String {
        indices.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", "_", ".", "*", ","]))
            ?? indices
    }

    /// A line for standard error: the command goes through the server.
    var notice: String { "quarry serve (pid \(pid)) has this data directory: going through \(elasticsearch)" }
}

extension Quarry.Serve {
    /// Mints the commands' key and writes `serve.json` once the Elasticsearch API listens; a file a killed server
    /// left has its key invalidated first.
    static func publish(
        directory: URL,
        security: ElasticsearchSecurity?,
        users: ElasticsearchSecurity,
        elasticsearch: String,
        web: String?
    ) throws -> ServedDataDirectory {
        if let stale = ServedDataDirectory.read(in: directory) {
            if let id = stale.apiKeyID { _ = try? security?.invalidateAPIKeys([id]) }
            if let token = stale.webToken { try? users.endSession(token) }
        }
        var served = ServedDataDirectory(pid: getpid(), elasticsearch: elasticsearch, web: web)
        served.webToken = try users.issueLocalCommandToken(for: ElasticsearchSecurity.elasticUser)
        if let security {
            let key = try security.createAPIKey(
                owner: ElasticsearchSecurity.elasticUser,
                name: ServedDataDirectory.keyName,
                expiration: nil,
                roleDescriptors: nil,
                metadata: ["purpose": "the quarry commands run beside quarry serve"]
            )
            served.apiKey = key.encoded
            served.apiKeyID = key.id
        }
        try served.write(in: directory)
        return served
    }

    /// Invalidates the key and the token and removes the file (at a clean shutdown).
    static func withdraw(
        _ served: ServedDataDirectory,
        directory: URL,
        security: ElasticsearchSecurity?,
        users: ElasticsearchSecurity
    ) {
        if let id = served.apiKeyID { _ = try? security?.invalidateAPIKeys([id]) }
        if let token = served.webToken { try? users.endSession(token) }
        try? FileManager.default.removeItem(at: ServedDataDirectory.file(in: directory))
    }
}
