import HTTPTypes
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
public import NIOSSL
import QuarryCore
public import QuarryElasticsearchAPI
public import QuarrySearch

/// The request context of the Elasticsearch API: Hummingbird's basics and the client's address, which throttles
/// failed authentications.
public struct ElasticsearchRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Serves ``ElasticsearchAPI`` over HTTP with the headers and content types Elasticsearch's clients expect.
public struct ElasticsearchResponder: HTTPResponder {
    public typealias Context = ElasticsearchRequestContext

    let api: ElasticsearchAPI
    /// ES's `http.max_content_length`.
    let maximumBodySize: Int
    let indexingPressure: IndexingPressure

    public init(api: ElasticsearchAPI, maximumBodySize: Int = 100 << 20, indexingPressureLimit: Int = 128 << 20) {
        self.init(api: api, maximumBodySize: maximumBodySize, indexingPressure: .init(limit: indexingPressureLimit))
    }

    init(api: ElasticsearchAPI, maximumBodySize: Int, indexingPressure: IndexingPressure) {
        self.api = api
        self.maximumBodySize = maximumBodySize
        self.indexingPressure = indexingPressure
    }

    static let productHeader = HTTPField.Name("X-Elastic-Product")!
    static let acceptedTypes = [
        "application/json", "application/x-ndjson", "application/vnd.elasticsearch+json",
        "application/vnd.elasticsearch+x-ndjson", "application/yaml", "application/smile", "text/plain",
    ]

    public func respond(to request: Request, context: ElasticsearchRequestContext) async throws -> Response {
        var request = request
        guard let method = ESRequest.Method(rawValue: request.method.rawValue) else {
            return render(
                ESResponse(status: 405, json: ["error": "Incorrect HTTP method", "status": 405]),
                pretty: false,
                compatible: nil
            )
        }
        let accept = request.headers[.accept]
        // A client asking for `compatible-with=N` (the official clients 8 and 9) gets that version's media type back.
        let compatible: String? =
            accept?.contains("vnd.elasticsearch") == true
            ? (accept?.firstMatch(of: /compatible-with=\s*(\d+)/).map { String($0.1) } ?? "8") : nil
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
        let tooLarge = ESResponse(
            status: 413,
            json: ["error": .string("Request body is larger than [\(maximumBodySize)] bytes"), "status": 413]
        )
        // The declared length is checked and reserved before the body is read, so memory stays bounded.
        let declared = request.headers[.contentLength].flatMap { Int($0) } ?? 0
        if declared > maximumBodySize { return render(tooLarge, pretty: false, compatible: compatible) }
        guard indexingPressure.reserve(declared) else {
            return render(indexingPressure.rejection(declared), pretty: false, compatible: compatible)
        }
        var reserved = declared
        defer { indexingPressure.release(reserved) }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumBodySize)
        } catch {
            return render(tooLarge, pretty: false, compatible: compatible)
        }
        if body.readableBytes > reserved {
            // A body without a declared length (chunked): reserve what arrived.
            guard indexingPressure.reserve(body.readableBytes - reserved) else {
                return render(indexingPressure.rejection(body.readableBytes), pretty: false, compatible: compatible)
            }
            reserved = body.readableBytes
        }
        var esRequest: ESRequest
        do {
            esRequest = try ESRequest(
                method: method,
                target: target,
                body: Array(buffer: body),
                authorization: request.headers[.authorization]
            )
        } catch {
            return render(.error(error), pretty: false, compatible: compatible)
        }
        esRequest.remoteAddress = context.remoteAddress?.ipAddress
        if let security = api.security {
            // Repeated failures for this user, key or address wait here, holding no thread, before being checked.
            let delay = security.attemptDelay(
                authorization: esRequest.authorization,
                remoteAddress: esRequest.remoteAddress
            )
            if delay > .zero { try await Task.sleep(for: delay) }
        }
        let response = try await StoreRequests.handle(esRequest, with: api)
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
                compatible.map { "application/vnd.elasticsearch+json;compatible-with=\($0)" } ?? "application/json"
        case .serializedJSON(let serialized):
            if pretty, let json = response.json {
                bytes = json.serializedBytes(pretty: true)
                bytes.append(0x0A)
            } else {
                bytes = serialized
            }
            headers[.contentType] =
                compatible.map { "application/vnd.elasticsearch+json;compatible-with=\($0)" } ?? "application/json"
        case .text(let text):
            bytes = Array(text.utf8)
            headers[.contentType] = "text/plain; charset=UTF-8"
        case .empty:
            headers[.contentLength] = "0"
        }
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
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
    /// A connection that sends and receives nothing for this long is closed.
    public var idleTimeout: Duration
    /// A request's head (request line and headers) must arrive within this time of its first byte.
    public var headerTimeout: Duration
    /// Elasticsearch's `http.max_content_length`: larger bodies are refused with 413.
    public var maximumBodySize: Int
    /// Elasticsearch's `indexing_pressure.memory.limit`: write requests whose bodies, with those already being
    /// indexed, would exceed it are refused with 429 `es_rejected_execution_exception`, which clients retry.
    public var indexingPressureLimit: Int
    /// HTTPS with this certificate and key (``serverTLS(certificateFile:keyFile:)``), or plain HTTP when `nil`.
    public var tls: TLSConfiguration?

    /// Loopback only by default.
    public init(
        host: String = "127.0.0.1",
        port: Int = 9200,
        idleTimeout: Duration = .seconds(60),
        headerTimeout: Duration = .seconds(30),
        maximumBodySize: Int = 100 << 20,
        indexingPressureLimit: Int = 128 << 20,
        tls: TLSConfiguration? = nil
    ) {
        self.tls = tls
        self.host = host
        self.port = port
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.maximumBodySize = maximumBodySize
        self.indexingPressureLimit = indexingPressureLimit
    }
}

/// Builds the HTTP application serving the Elasticsearch API for `store`.
/// - Parameters:
///   - security: authenticates and authorizes every request; `nil` serves every index to whoever connects, which
///     only a caller that chose it on purpose passes (`quarry serve --no-es-authentication` on loopback).
///   - onServerRunning: called with the bound port once the listener is up (useful with port 0).
public func buildElasticsearchApplication(
    store: EmbeddedStore,
    security: ElasticsearchSecurity?,
    configuration: ElasticsearchServerConfiguration = .init(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let headerTimeout = TimeAmount(configuration.headerTimeout)
    let http1 = HTTPServerBuilder.http1(
        configuration: .init(
            additionalChannelHandlers: [ConnectionGuard(headerTimeout: headerTimeout)],
            idleTimeout: TimeAmount(configuration.idleTimeout)
        )
    )
    return Application(
        responder: ElasticsearchResponder(
            api: ElasticsearchAPI(store: store, security: security),
            maximumBodySize: configuration.maximumBodySize,
            indexingPressure: IndexingPressure(limit: configuration.indexingPressureLimit)
        ),
        server: try configuration.tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0) } ?? http1,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}

/// A server's TLS configuration from PEM files: the certificate chain (leaf first) and its private key.
/// - Throws: An error naming the file that cannot be read or parsed.
public func serverTLS(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
    let chain: [NIOSSLCertificate]
    do {
        chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
    } catch {
        throw TLSFileError(description: "cannot read the certificate chain in \(certificateFile) (PEM): \(error)")
    }
    guard !chain.isEmpty else { throw TLSFileError(description: "no certificate in \(certificateFile)") }
    let key: NIOSSLPrivateKey
    do {
        key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
    } catch {
        throw TLSFileError(description: "cannot read the private key in \(keyFile) (PEM): \(error)")
    }
    return TLSConfiguration.makeServerConfiguration(
        certificateChain: chain.map { .certificate($0) },
        privateKey: .privateKey(key)
    )
}

/// A certificate or key file that cannot be used.
public struct TLSFileError: Error, CustomStringConvertible {
    public var description: String
}
