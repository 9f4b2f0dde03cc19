public import AsyncHTTPClient
public import Logging
import NIOCore
import NIOSSL
public import QuarryCore

/// What an agent may reach while it works: the run it belongs to, the outside world (HTTP, clusters, SMTP trust),
/// and its own durable memory.
public struct AgentContext: Sendable {
    public var storyName: String
    public var agent: AgentDefinition
    public var runGUID: String
    /// Side effects (HTTP requests that are not GET, emails, sub-story calls) are recorded, not performed.
    public var dryRun: Bool
    public var services: StoryServices
    public var memory: AgentMemory
    public var logger: Logger
    /// The attempt this call is (1 for the first).
    public var attempt: Int
    /// The variables the options were rendered with: the event's members and upstream agents' events by name.
    public var variables: JSONObject
    let vault: Vault
    /// The credentials this delivery may read (those its story declares) and where they may go.
    let credentials: CredentialAccess
    /// Runs another story to its end and returns its result (for `send_to_story`).
    var runStory: (@Sendable (String, JSON) async throws -> JSON)?

    /// The value of credential `name`, or nil. Only credentials the story declares can be read; the engine redacts
    /// every credential's value from what it stores.
    public func credential(_ name: String) throws -> String? {
        do {
            return try credentials.value(named: name)
        } catch let error as CredentialAccessError {
            throw AgentError.failed(error.description)
        }
    }

    /// Call before connecting to `host`: fails when a credential read in this delivery (by a template or by
    /// ``credential(_:)``) carries allowed hosts and `host` is not one of them.
    public func checkDestination(_ host: String) throws {
        do {
            try credentials.checkDestination(host)
        } catch let error as CredentialAccessError {
            throw AgentError.failed(error.description)
        }
    }

    /// The value of global resource `name`, or nil.
    public func resource(_ name: String) throws -> JSON? { try vault.resource(name) }
}

/// Searches a cluster: the embedded store, or a remote Elasticsearch or OpenSearch.
public protocol SearchCluster: Sendable {
    /// Runs `POST /<index>/_search` with `body` and returns Elasticsearch's response.
    func search(index: String, body: JSON) async throws -> JSON
}

/// The outside world as the engine hands it to agents; tests and the CLI fill it.
public struct StoryServices: Sendable {
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
    /// The base URL of the web interface, for `story_run_link`.
    public var baseURL: String

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

    public init(
        httpClient: HTTPClient,
        defaultCluster: (any SearchCluster)? = nil,
        trustedCertificatesFile: String? = nil,
        defaultResolver: String? = nil,
        baseURL: String = "http://127.0.0.1:8080"
    ) {
        self.httpClient = httpClient
        self.defaultCluster = defaultCluster
        self.trustedCertificatesFile = trustedCertificatesFile
        self.defaultResolver = defaultResolver
        self.baseURL = baseURL
    }

    /// The resolver a `dns` agent without one uses: ``defaultResolver``, else the global resource `resolver` (a URL
    /// string or `{"url": …}`), else ``builtInResolver``. One place decides, so that the CLI can say which it is.
    public func resolver(resource: JSON?) -> String {
        if let defaultResolver, !defaultResolver.isEmpty { return defaultResolver }
        if let text = resource?.stringValue ?? resource?["url"]?.stringValue, !text.isEmpty { return text }
        return Self.builtInResolver
    }
}
