import HTTPTypes
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
public import NIOCore
public import NIOSSL
public import QuarryElasticsearchAPI
public import QuarrySearch
public import QuarryStories

/// Where and how the web application listens.
public struct WebServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port.
    public var port: Int
    /// HTTPS with this configuration (``serverTLS(certificateFile:keyFile:)``), or plain HTTP when `nil`.
    public var tls: TLSConfiguration?
    /// The URL people reach the application at (behind a proxy, say), for links in emails and cookies' `Secure`
    /// flag; by default the address it listens on.
    public var publicURL: String?
    /// Webhook bodies larger than this are refused with 413.
    public var maximumWebhookBodySize: Int
    /// Webhook requests handled at once; more are answered 503 with `Retry-After`, so that a flood of posts
    /// queues in the callers, not in memory.
    public var maximumConcurrentWebhooks: Int
    public var idleTimeout: Duration
    public var headerTimeout: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        tls: TLSConfiguration? = nil,
        publicURL: String? = nil,
        maximumWebhookBodySize: Int = 10 << 20,
        maximumConcurrentWebhooks: Int = 512,
        idleTimeout: Duration = .seconds(60),
        headerTimeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.publicURL = publicURL
        self.maximumWebhookBodySize = maximumWebhookBodySize
        self.maximumConcurrentWebhooks = maximumConcurrentWebhooks
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
    }
}

/// The request context of the web application: Hummingbird's basics (with its request id in the logger), the
/// client's address (for the sign-in throttle), and who is signed in.
public struct WebRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The signed-in user (session cookie) or the API token's user (`Authorization: Bearer`).
    var user: WebUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Form and API bodies: larger ones are refused with 413 (webhooks have their own limit).
    public var maxUploadSize: Int { 4 << 20 }
}

/// Builds the web application: pages, forms, run pages, the `/api/v1` REST API, `/metrics`, `/healthz` and the
/// stories' webhooks, all on one listener.
/// - Parameters:
///   - engine: runs the stories; its ``StoryEngine/baseURL`` is set to the public URL once the port is known.
///   - security: the users, sessions and tokens (the same users as the Elasticsearch API's).
///   - store: the embedded store, for its numbers on `/metrics` (nil when stories search a remote cluster only).
///   - stories: the watched story directory, whose files that fail to load are shown on `/stories`.
///   - onServerRunning: called with the bound port once the listener is up (useful with port 0).
public func buildWebApplication<EngineClock: Clock>(
    engine: StoryEngine<EngineClock>,
    security: ElasticsearchSecurity,
    store: EmbeddedStore?,
    stories: StoryDirectory<EngineClock>? = nil,
    configuration: WebServerConfiguration = .init(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol where EngineClock.Duration == Duration {
    let site = WebSite(
        engine: engine,
        security: security,
        store: store,
        stories: stories,
        configuration: configuration
    )
    let router = site.router()
    let http1 = HTTPServerBuilder.http1(
        configuration: .init(
            additionalChannelHandlers: [ConnectionGuard(headerTimeout: TimeAmount(configuration.headerTimeout))],
            idleTimeout: TimeAmount(configuration.idleTimeout)
        )
    )
    let scheme = configuration.tls == nil ? "http" : "https"
    return Application(
        router: router,
        server: try configuration.tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0) } ?? http1,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? 0
            let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            engine.baseURL = configuration.publicURL ?? "\(scheme)://\(host):\(port)"
            await onServerRunning(port)
        },
        logger: logger
    )
}
