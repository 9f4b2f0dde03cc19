public import AsyncHTTPClient
import NIOCore
import NIOSSL
public import QuarryCore
public import QuarryStories

/// Searches a cluster: the embedded store, or a remote Elasticsearch or OpenSearch. It lives with the agents that
/// consume it; the embedded store and ``QuarryElastic`` are made to conform where they are wired together.
public protocol SearchCluster: Sendable {
    /// Runs `POST /<index>/_search` with `body` and returns Elasticsearch's response.
    func search(index: String, body: JSON) async throws -> JSON
}

/// The services the built-in agents read from ``QuarryStories/AgentServices``.
public struct BuiltInServices: Sendable {
    /// The process's one HTTP client (see ``makeHTTPClient(trustedCertificatesFile:connectTimeout:)``).
    public var httpClient: HTTPClient
    /// The cluster searches go to when an `elasticsearch` agent names none.
    public var defaultCluster: (any SearchCluster)?
    /// Extra certificate authorities (PEM file) trusted for SMTP and HTTPS besides the system's.
    public var trustedCertificatesFile: String?
    /// The resolver a `dns` agent uses when it names none, when the person running Quarry chose one (`--resolver`,
    /// `QUARRY_RESOLVER`); otherwise the global resource `resolver`, else ``builtInResolver`` (see
    /// ``resolver(resource:)``).
    public var defaultResolver: String?
    /// The resolver when nobody chose one: Cloudflare's public DNS-over-HTTPS service.
    public static let builtInResolver = "https://cloudflare-dns.com/dns-query"
    /// The environment variable that sets the default resolver for one shell.
    public static let resolverVariable = "QUARRY_RESOLVER"

    public init(
        httpClient: HTTPClient,
        defaultCluster: (any SearchCluster)? = nil,
        trustedCertificatesFile: String? = nil,
        defaultResolver: String? = nil
    ) {
        self.httpClient = httpClient
        self.defaultCluster = defaultCluster
        self.trustedCertificatesFile = trustedCertificatesFile
        self.defaultResolver = defaultResolver
    }

    /// The resolver a `dns` agent without one uses: ``defaultResolver``, else the global resource `resolver` (a URL
    /// string or `{"url": …}`), else ``builtInResolver``. One place decides, so that the CLI can say which it is.
    public func resolver(resource: JSON?) -> String {
        if let defaultResolver, !defaultResolver.isEmpty { return defaultResolver }
        if let text = resource?.stringValue ?? resource?["url"]?.stringValue, !text.isEmpty { return text }
        return Self.builtInResolver
    }

    /// Shuts the HTTP client down, once the agents that use it have stopped: for the composition root, which
    /// made it.
    public func shutdown() async throws {
        try await httpClient.shutdown()
    }

    /// An HTTP client that trusts the system's certificate authorities and those in `trustedCertificatesFile`.
    ///
    /// A connection that cannot be made fails at once (refused) or within `connectTimeout` (an unreachable host):
    /// the engine retries agents with its own backoff, so the client does not retry connecting within an attempt
    /// (AsyncHTTPClient otherwise keeps trying until its connect timeout, 5–10 s for a closed local port).
    public static func makeHTTPClient(
        trustedCertificatesFile: String?,
        connectTimeout: Duration = .seconds(5)
    ) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let trustedCertificatesFile { tls.additionalTrustRoots = [.file(trustedCertificatesFile)] }
        return makeHTTPClient(tls: tls, connectTimeout: connectTimeout)
    }

    static func makeHTTPClient(tls: TLSConfiguration, connectTimeout: Duration = .seconds(5)) -> HTTPClient {
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout.connect = TimeAmount(connectTimeout)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

/// The key under which the built-in agents find their services.
public enum BuiltInServicesKey: AgentServiceKey {
    public typealias Value = BuiltInServices
}

extension AgentServices {
    /// Services holding only the built-in agents' `services`.
    public init(_ services: BuiltInServices) {
        self.init()
        self[BuiltInServicesKey.self] = services
    }
}

extension AgentContext {
    /// The built-in agents' services; an agent run by an engine that was given none fails with a clear error.
    var builtIn: BuiltInServices {
        get throws {
            guard let services = services[BuiltInServicesKey.self] else {
                throw AgentError.failed("this engine was built without the built-in agents' services")
            }
            return services
        }
    }
}

extension AgentRegistry {
    /// Every built-in agent type, in the order the documentation lists them.
    public static let builtIn = AgentRegistry([
        WebhookAgent.self, HTTPRequestAgent.self, ElasticsearchAgent.self, DNSAgent.self, TriggerAgent.self,
        TransformAgent.self, EmailAgent.self, SendToStoryAgent.self,
    ])
}
