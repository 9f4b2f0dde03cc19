import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import NIOPosix
import QuarryCore
public import QuarrySearch

/// Serves ``ElasticsearchAPI`` over HTTP with the headers and content types Elasticsearch's clients expect.
public struct ElasticsearchResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    let api: ElasticsearchAPI
    /// ES's default `http.max_content_length`.
    let maximumBodySize: Int

    public init(api: ElasticsearchAPI, maximumBodySize: Int = 100 << 20) {
        self.api = api
        self.maximumBodySize = maximumBodySize
    }

    static let productHeader = HTTPField.Name("X-Elastic-Product")!
    static let acceptedTypes = [
        "application/json", "application/x-ndjson", "application/vnd.elasticsearch+json",
        "application/vnd.elasticsearch+x-ndjson", "application/yaml", "application/smile", "text/plain",
    ]

    public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        guard let method = ESRequest.Method(rawValue: request.method.rawValue) else {
            return render(
                ESResponse(status: 405, json: ["error": "Incorrect HTTP method", "status": 405]),
                pretty: false,
                compatible: nil
            )
        }
        let accept = request.headers[.accept]
        let compatible = accept?.contains("vnd.elasticsearch") == true ? accept : nil
        let target = request.head.path ?? "/"
        if let contentType = request.headers[.contentType]?.lowercased(),
            !Self.acceptedTypes.contains(where: { contentType.hasPrefix($0) })
        {
            return render(
                ESResponse(
                    status: 406,
                    json: ["error": .string("Content-Type header [\(contentType)] is not supported"), "status": 406]
                ),
                pretty: false,
                compatible: compatible
            )
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumBodySize)
        } catch {
            return render(
                ESResponse(
                    status: 413,
                    json: [
                        "error": .string("Request body is larger than [\(maximumBodySize)] bytes"),
                        "status": 413,
                    ]
                ),
                pretty: false,
                compatible: compatible
            )
        }
        let esRequest = ESRequest(method: method, target: target, body: Array(buffer: body))
        let api = self.api
        // The store works synchronously on SQLite: run it off the cooperative pool.
        let response = try await NIOThreadPool.singleton.runIfActive { api.handle(esRequest) }
        let pretty = esRequest.parameters["pretty"].map { $0 != "false" } ?? false
        return render(response, pretty: pretty, compatible: compatible)
    }

    private func render(_ response: ESResponse, pretty: Bool, compatible: String?) -> Response {
        var headers = HTTPFields()
        headers[Self.productHeader] = "Elasticsearch"
        var bytes: [UInt8] = []
        switch response.body {
        case .json(let json):
            bytes = json.serializedBytes(pretty: pretty)
            if pretty { bytes.append(0x0A) }
            headers[.contentType] =
                compatible != nil ? "application/vnd.elasticsearch+json;compatible-with=8" : "application/json"
        case .serializedJSON(let serialized):
            if pretty, let json = response.json {
                bytes = json.serializedBytes(pretty: true)
                bytes.append(0x0A)
            } else {
                bytes = serialized
            }
            headers[.contentType] =
                compatible != nil ? "application/vnd.elasticsearch+json;compatible-with=8" : "application/json"
        case .text(let text):
            bytes = Array(text.utf8)
            headers[.contentType] = "text/plain; charset=UTF-8"
        case .empty:
            headers[.contentLength] = "0"
        }
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: response.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }
}

/// Where and how the Elasticsearch API listens.
public struct ElasticsearchServerConfiguration: Sendable {
    public var host: String
    public var port: Int

    /// Loopback only by default: the API has no authentication yet.
    public init(host: String = "127.0.0.1", port: Int = 9200) {
        self.host = host
        self.port = port
    }
}

/// Builds the HTTP application serving the Elasticsearch API for `store`.
/// - Parameters:
///   - onServerRunning: called with the bound port once the listener is up (useful with port 0).
public func buildElasticsearchApplication(
    store: EmbeddedStore,
    configuration: ElasticsearchServerConfiguration = .init(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        responder: ElasticsearchResponder(api: ElasticsearchAPI(store: store)),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}
