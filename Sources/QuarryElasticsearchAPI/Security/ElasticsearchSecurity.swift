import Crypto
public import Foundation
import HummingbirdBcrypt
public import Logging
import NIOConcurrencyHelpers
public import QuarryCore
public import QuarrySearch

/// Security for Quarry's Elasticsearch API, as Elasticsearch has it with `xpack.security.enabled`: the native realm
/// (users with bcrypt-hashed passwords, the reserved `elastic` superuser), roles, API keys, and the authentication of
/// every request from its `Authorization` header (`Basic`, `ApiKey`).
///
/// A successful authentication is cached, keyed by a SHA-256 of the header, for `cacheTTL` (Elasticsearch's
/// `api_key.cache.ttl` and realm cache), so a request costs a hash and a dictionary lookup, not a bcrypt. Any change
/// to users, roles or keys, in this process or in another writing the same `security.sqlite`, drops the cache.
public final class ElasticsearchSecurity: Sendable {
    public struct Configuration: Sendable {
        /// Roles given to requests without credentials (Elasticsearch's `xpack.security.authc.anonymous.roles`); empty,
        /// the default, answers them 401.
        public var anonymousRoles: [String]
        /// bcrypt's cost (log2 rounds) for new password and API key hashes; Elasticsearch's default is 10.
        public var passwordHashCost: Int
        /// How long a verified credential is trusted without a bcrypt.
        public var cacheTTL: Duration
        public var cacheSize: Int
        public var throttle: LoginThrottle.Configuration

        public init(
            anonymousRoles: [String] = [],
            passwordHashCost: Int = 10,
            cacheTTL: Duration = .seconds(24 * 3600),
            cacheSize: Int = 10_000,
            throttle: LoginThrottle.Configuration = .init()
        ) {
            self.anonymousRoles = anonymousRoles
            self.passwordHashCost = passwordHashCost
            self.cacheTTL = cacheTTL
            self.cacheSize = cacheSize
            self.throttle = throttle
        }
    }

    /// The reserved superuser.
    public static let elasticUser = "elastic"

    private struct CacheEntry {
        var authentication: Authentication
        var expires: ContinuousClock.Instant
        /// An API key's own expiry, in milliseconds since the epoch.
        var keyExpiration: Int64?
    }

    private struct Cache {
        var entries: [String: CacheEntry] = [:]
        var localVersion = 0
        var externalVersion = 0
        var externalChecked = ContinuousClock.now
    }

    let database: SecurityDatabase
    public let configuration: Configuration
    public let throttle: LoginThrottle
    let logger: Logger
    private let cache = NIOLockedValueBox(Cache())

    /// Opens the security index in `directory` (the data directory).
    public init(directory: URL, configuration: Configuration = .init(), logger: Logger) throws {
        database = try SecurityDatabase(directory: directory)
        self.configuration = configuration
        throttle = LoginThrottle(configuration: configuration.throttle)
        self.logger = logger
        let local = database.localVersion
        let external = database.externalVersion()
        cache.withLockedValue {
            $0.localVersion = local
            $0.externalVersion = external
        }
    }

    // MARK: The elastic user

    /// Creates the `elastic` superuser when it does not exist yet, with `password` (from `QUARRY_ELASTIC_PASSWORD`,
    /// as Elasticsearch takes `ELASTIC_PASSWORD`) or a generated one.
    /// - Returns: The generated password, to show once; `nil` when the user existed or `password` was given.
    public func bootstrapElasticUser(password: String?) throws -> String? {
        if try database.user(Self.elasticUser) != nil { return nil }
        let chosen = password ?? Self.generatePassword()
        try Self.validatePassword(chosen)
        try database.putUser(
            UserRecord(
                username: Self.elasticUser,
                passwordHash: hash(chosen),
                roles: ["superuser"],
                metadata: ["_reserved": true],
                enabled: true
            )
        )
        return password == nil ? chosen : nil
    }

    /// Sets a user's password (a generated one when `password` is nil) and returns it. `elastic` is created when
    /// it does not exist yet, so a data directory `quarry serve` never opened can be given its password first.
    public func resetPassword(_ username: String, to password: String?) throws -> String {
        if username == Self.elasticUser, try database.user(username) == nil {
            let chosen = password ?? Self.generatePassword()
            _ = try bootstrapElasticUser(password: chosen)
            return chosen
        }
        guard var user = try database.user(username) else {
            throw StoreError.resourceNotFound("user [\(username)] does not exist")
        }
        let chosen = password ?? Self.generatePassword()
        try Self.validatePassword(chosen)
        user.passwordHash = hash(chosen)
        try database.putUser(user)
        return chosen
    }

    /// The authentication of a stored user, for in-process calls made on its behalf (the CLI minting a key as
    /// `elastic`).
    public func authentication(ofUser username: String) throws(StoreError) -> Authentication {
        guard let user = try database.user(username) else {
            throw .resourceNotFound("user [\(username)] does not exist")
        }
        return try authentication(of: user)
    }

    // MARK: Users and roles

    /// Elasticsearch's rule for user and role names.
    static func validateName(_ name: String, kind: String) throws(StoreError) {
        let valid =
            !name.isEmpty && name.count <= 507 && !name.hasPrefix("_")
            && name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
            && name.first != " " && name.last != " "
        guard valid else {
            throw .validation(
                "Valid \(kind)s must be at least 1 and no more than 507 characters. They can contain alphanumeric "
                    + "characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the Basic Latin (ASCII) "
                    + "block. Leading or trailing whitespace is not allowed"
            )
        }
    }

    func passwordHash(_ body: JSONObject) throws(StoreError) -> String? {
        if let password = body["password"] {
            guard let text = password.stringValue else { throw .validation("password must be a string") }
            try Self.validatePassword(text)
            return hash(text)
        }
        if let hash = body["password_hash"]?.stringValue {
            guard Self.isBcryptHash(hash) else {
                throw .illegalArgument(
                    "The provided password hash is not a hash or it could not be resolved to a supported hash algorithm. "
                        + "The supported password hash algorithm is [bcrypt]"
                )
            }
            return hash
        }
        return nil
    }

    /// Adds or replaces a user from a `PUT /_security/user/{name}` body (`password` or `password_hash`, `roles`,
    /// `full_name`, `email`, `metadata`, `enabled`); returns whether it was created.
    @discardableResult
    public func putUser(_ username: String, body json: JSON) throws(StoreError) -> Bool {
        try Self.validateName(username, kind: "username")
        if username == Self.elasticUser {
            throw .validation("user [\(username)] is reserved and only the password can be changed")
        }
        guard case .object(let body) = json else { throw .parsing("the user must be an object") }
        for key in body.keys
        where !["password", "password_hash", "roles", "full_name", "email", "metadata", "enabled"].contains(key) {
            throw StoreError(
                type: "parse_exception",
                reason: "failed to parse add user request. unexpected field [\(key)]",
                status: 400
            )
        }
        let existing = try database.user(username)
        guard let hash = try passwordHash(body) ?? existing?.passwordHash else {
            throw .validation("password must be specified unless you are updating an existing user")
        }
        guard let roles = body["roles"]?.arrayValue?.compactMap(\.stringValue) ?? existing?.roles else {
            throw .validation("roles are missing")
        }
        let metadata = body["metadata"]?.objectValue ?? existing?.metadata ?? [:]
        if let reserved = metadata.keys.first(where: { $0.hasPrefix("_") }) {
            throw .validation("metadata keys may not start with [_] ([\(reserved)])")
        }
        return try database.putUser(
            UserRecord(
                username: username,
                passwordHash: hash,
                roles: roles,
                fullName: body["full_name"].map { $0.stringValue } ?? existing?.fullName,
                email: body["email"].map { $0.stringValue } ?? existing?.email,
                metadata: metadata,
                enabled: body["enabled"]?.boolValue ?? existing?.enabled ?? true
            )
        )
    }

    /// The users, by name.
    public func users() throws(StoreError) -> [(username: String, roles: [String], enabled: Bool)] {
        try database.users().map { ($0.username, $0.roles, $0.enabled) }
    }

    /// Removes a user; false when there was none.
    public func deleteUser(_ username: String) throws(StoreError) -> Bool {
        if username == Self.elasticUser { throw .validation("user [\(username)] is reserved and cannot be deleted") }
        return try database.deleteUser(username)
    }

    /// The built-in roles, then the stored ones.
    public func roles() throws(StoreError) -> [(String, RoleDescriptor)] {
        RoleDescriptor.builtIn.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + (try database.roles())
    }

    // MARK: API keys

    /// A key just created: the only time its secret is known.
    public struct CreatedAPIKey: Sendable {
        public var id: String
        public var name: String
        public var secret: String
        /// Milliseconds since the epoch.
        public var expiration: Int64?
        /// `base64(id:secret)`, the value of `Authorization: ApiKey …`.
        public var encoded: String { Data("\(id):\(secret)".utf8).base64EncodedString() }

        /// The body of Elasticsearch's create API key response.
        public var json: JSON {
            var object: JSONObject = ["id": .string(id), "name": .string(name)]
            if let expiration { object["expiration"] = .int(expiration) }
            object["api_key"] = .string(secret)
            object["encoded"] = .string(encoded)
            return .object(object)
        }
    }

    /// Stores a new key (its secret only as a bcrypt hash).
    func mintAPIKey(
        name: String,
        expiration: Int64?,
        roleDescriptors: [(String, RoleDescriptor)],
        metadata: JSONObject,
        owner: String,
        realm: String,
        limitedBy: [(String, RoleDescriptor)]
    ) throws(StoreError) -> CreatedAPIKey {
        let id = Self.randomToken(bytes: 15)
        let secret = Self.randomToken(bytes: 16)
        try database.putAPIKey(
            APIKeyRecord(
                id: id,
                name: name,
                secretHash: hash(secret),
                owner: owner,
                realm: realm,
                created: Self.nowMilliseconds(),
                expiration: expiration,
                invalidated: nil,
                roleDescriptors: roleDescriptors,
                limitedBy: limitedBy,
                metadata: metadata
            )
        )
        return CreatedAPIKey(id: id, name: name, secret: secret, expiration: expiration)
    }

    /// Creates an API key owned by a stored user, limited by that user's roles (the CLI's
    /// `quarry es api-key create`, which acts as `elastic` by default).
    /// - Parameters:
    ///   - expiration: Milliseconds from now, or `nil` for a key that does not expire.
    ///   - roleDescriptors: JSON of `role_descriptors`, as the REST API takes it; `nil` or empty for the owner's
    ///     privileges.
    public func createAPIKey(
        owner username: String,
        name: String,
        expiration: Int64?,
        roleDescriptors: JSON?,
        metadata: JSONObject = [:]
    ) throws(StoreError) -> CreatedAPIKey {
        guard let user = try database.user(username) else {
            throw .resourceNotFound(
                "user [\(username)] does not exist"
                    + (username == Self.elasticUser
                        ? ": `quarry serve` creates it on first start, or `quarry users reset-password elastic` now"
                        : "")
            )
        }
        var descriptors: [(String, RoleDescriptor)] = []
        for (role, json) in roleDescriptors?.objectValue ?? [:] {
            descriptors.append((role, try RoleDescriptor(parsing: json, role: role)))
        }
        return try mintAPIKey(
            name: name,
            expiration: expiration.map { Self.nowMilliseconds() + $0 },
            roleDescriptors: descriptors,
            metadata: metadata,
            owner: user.username,
            realm: user.username == Self.elasticUser ? "reserved" : "default_native",
            limitedBy: try namedDescriptors(user.roles)
        )
    }

    /// Keys as `GET /_security/api_key` lists them, newest last.
    public func apiKeys() throws(StoreError) -> [JSON] {
        try database.apiKeys().map { $0.json(withLimitedBy: false) }
    }

    /// Invalidates keys by id; returns those newly invalidated.
    public func invalidateAPIKeys(_ ids: [String]) throws(StoreError) -> [String] {
        try database.invalidateAPIKeys(ids, at: Self.nowMilliseconds()).invalidated
    }

    /// Roles by name with their descriptors (unknown names left out): what a key is limited by.
    func namedDescriptors(_ roles: [String]) throws(StoreError) -> [(String, RoleDescriptor)] {
        var descriptors: [(String, RoleDescriptor)] = []
        for role in roles {
            if let descriptor = try roleDescriptor(role) { descriptors.append((role, descriptor)) }
        }
        return descriptors
    }

    // MARK: Tokens

    /// Access tokens live 20 minutes and refresh tokens 24 hours, as Elasticsearch's.
    static let accessTokenLifetime: Int64 = 20 * 60 * 1000
    static let refreshTokenLifetime: Int64 = 24 * 3600 * 1000

    static func tokenHash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).hexString
    }

    /// Issues an access token for `username`, with a refresh token when asked (the `password` and `refresh_token`
    /// grants); returns Elasticsearch's response body without `authentication`.
    func issueToken(for username: String, withRefresh: Bool) throws(StoreError) -> JSONObject {
        let now = Self.nowMilliseconds()
        let access = Self.randomToken(bytes: 32)
        let refresh = withRefresh ? Self.randomToken(bytes: 32) : nil
        try database.putToken(
            TokenRecord(
                hash: Self.tokenHash(access),
                kind: "access",
                username: username,
                created: now,
                expiration: now + Self.accessTokenLifetime,
                pair: refresh.map(Self.tokenHash)
            )
        )
        if let refresh {
            try database.putToken(
                TokenRecord(
                    hash: Self.tokenHash(refresh),
                    kind: "refresh",
                    username: username,
                    created: now,
                    expiration: now + Self.refreshTokenLifetime,
                    pair: Self.tokenHash(access)
                )
            )
        }
        var body: JSONObject = [
            "access_token": .string(access), "type": "Bearer",
            "expires_in": .int(Self.accessTokenLifetime / 1000), "scope": "full",
        ]
        if let refresh { body["refresh_token"] = .string(refresh) }
        return body
    }

    /// Uses a refresh token once: its user gets a new pair, and the old pair is invalidated.
    func refreshToken(_ token: String) throws(StoreError) -> (username: String, body: JSONObject) {
        let hash = Self.tokenHash(token)
        guard let record = try database.token(hash: hash), record.kind == "refresh", record.invalidated == nil,
            record.expiration > Self.nowMilliseconds()
        else {
            throw StoreError(
                type: "security_exception",
                reason: "token has already been refreshed or is invalid",
                status: 400
            )
        }
        _ = try database.invalidateTokens(
            hashes: [hash] + (record.pair.map { [$0] } ?? []),
            username: nil,
            at: Self.nowMilliseconds()
        )
        return (record.username, try issueToken(for: record.username, withRefresh: true))
    }

    // MARK: Passwords and secrets

    /// 20 characters from a cryptographic generator, as Elasticsearch generates the `elastic` password.
    public static func generatePassword() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*+-")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// Random bytes in URL-safe base64 without padding, as Elasticsearch's API key ids (15 bytes) and secrets (16).
    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Elasticsearch's rule (at least 6 characters), and bcrypt's: at most 72 bytes (bcrypt ignores the rest, so a
    /// longer password would be accepted with anything after its 72nd byte) and no NUL byte.
    static func validatePassword(_ password: String) throws(StoreError) {
        if password.count < 6 {
            throw .validation("passwords must be at least [6] characters long")
        }
        if password.utf8.count > 72 || password.utf8.contains(0) {
            throw .validation("passwords must be at most [72] bytes long and contain no NUL character")
        }
    }

    func hash(_ secret: String) -> String {
        Bcrypt.hash(secret, cost: UInt8(clamping: min(max(configuration.passwordHashCost, 4), 31)))
    }

    static func isBcryptHash(_ text: String) -> Bool {
        text.count == 60 && ["$2a$", "$2b$", "$2y$"].contains { text.hasPrefix($0) }
    }

    // MARK: Authentication

    /// The keys ``LoginThrottle`` counts for a request: the user or key id named in its header, and its address.
    public func throttleKeys(authorization: String?, remoteAddress: String?) -> [String] {
        var keys: [String] = []
        if let remoteAddress { keys.append("address:" + remoteAddress) }
        switch Credentials(header: authorization) {
        case .basic(let username, _): keys.append("user:" + username)
        case .apiKey(let id, _): keys.append("key:" + id)
        default: break
        }
        return keys
    }

    /// How long to wait before checking this request's credentials (nothing unless its user, key or address failed
    /// repeatedly just before).
    public func attemptDelay(authorization: String?, remoteAddress: String?) -> Duration {
        // Nothing failed lately (the usual case): no need to decode the header on every request.
        guard throttle.trackedCount > 0 else { return .zero }
        return throttle.delay(for: throttleKeys(authorization: authorization, remoteAddress: remoteAddress))
    }

    /// Authenticates a request from its `Authorization` header.
    /// - Returns: The caller, or Elasticsearch's 401 `security_exception` (with its `WWW-Authenticate` header).
    public func authenticate(
        authorization: String?,
        remoteAddress: String?,
        path: String
    ) -> Result<Authentication, StoreError> {
        // A cached credential is found by the header's hash alone; the header is decoded only on a miss.
        let cacheKey = authorization.map { SHA256.hash(data: Data($0.utf8)).hexString } ?? ""
        if authorization?.isEmpty == false, let cached = cachedAuthentication(cacheKey) { return .success(cached) }
        let credentials = Credentials(header: authorization)
        if case .none = credentials {
            if !configuration.anonymousRoles.isEmpty { return .success(anonymous()) }
            return .failure(Self.unauthenticated("missing authentication credentials for REST request [\(path)]"))
        }
        let result = verify(credentials, path: path)
        let keys = throttleKeys(authorization: authorization, remoteAddress: remoteAddress)
        switch result {
        case .success(let (authentication, keyExpiration)):
            for key in keys where !key.hasPrefix("address:") { throttle.recordSuccess(key) }
            store(authentication, keyExpiration: keyExpiration, under: cacheKey)
            return .success(authentication)
        case .failure(let error):
            let count = throttle.recordFailure(keys)
            if count == throttle.configuration.freeFailures + 1 || (count > 0 && count % 100 == 0) {
                var metadata: Logger.Metadata = ["failures": "\(count)"]
                for key in keys {
                    let parts = key.split(separator: ":", maxSplits: 1)
                    if parts.count == 2 { metadata[String(parts[0])] = "\(parts[1])" }
                }
                logger.warning("repeated authentication failures: further attempts are slowed down", metadata: metadata)
            }
            return .failure(error)
        }
    }

    /// Authenticates a user by password given in a body (`api_key/grant`, the `password` token grant), counted and
    /// throttled as a `Basic` header would be.
    func authenticate(
        username: String,
        password: String,
        remoteAddress: String?,
        path: String
    ) throws(StoreError) -> Authentication {
        let basic = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        return try authenticate(authorization: basic, remoteAddress: remoteAddress, path: path).get()
    }

    private func anonymous() -> Authentication {
        let roles = configuration.anonymousRoles
        return Authentication(
            kind: .anonymous,
            username: "_anonymous",
            roles: roles,
            realmName: "__anonymous",
            realmType: "__anonymous",
            layers: [Permission(roles.compactMap { try? roleDescriptor($0) })]
        )
    }

    private func verify(
        _ credentials: Credentials,
        path: String
    ) -> Result<(Authentication, Int64?), StoreError> {
        switch credentials {
        case .none:
            return .failure(Self.unauthenticated("missing authentication credentials for REST request [\(path)]"))
        case .malformed(let scheme):
            return .failure(Self.unauthenticated("invalid \(scheme) authentication header value"))
        case .bearer(let token):
            let failure = Self.unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
                detail: "Bearer: token expired, invalidated or unknown"
            )
            guard let record = try? database.token(hash: Self.tokenHash(token)), record.kind == "access",
                record.invalidated == nil, record.expiration > Self.nowMilliseconds(),
                let user = try? database.user(record.username), user.enabled,
                var authentication = try? authentication(of: user)
            else { return .failure(failure) }
            authentication.kind = .token
            return .success((authentication, record.expiration))
        case .basic(let username, let password):
            let failure = Self.unauthenticated("unable to authenticate user [\(username)] for REST request [\(path)]")
            // bcrypt reads 72 bytes at most; no stored password is longer, so a longer one is wrong, never truncated.
            guard password.utf8.count <= 72, let user = try? database.user(username), user.enabled,
                Bcrypt.verify(password, hash: user.passwordHash)
            else { return .failure(failure) }
            do {
                return .success((try authentication(of: user), nil))
            } catch {
                return .failure(failure)
            }
        case .apiKey(let id, let secret):
            func failure(_ detail: String) -> StoreError {
                Self.unauthenticated(
                    "unable to authenticate with provided credentials and anonymous access is not allowed for this "
                        + "request",
                    detail: "API key: \(detail)"
                )
            }
            guard let key = try? database.apiKey(id) else {
                return .failure(failure("unable to find apikey with id \(id)"))
            }
            if key.invalidated != nil { return .failure(failure("api key [\(id)] has been invalidated")) }
            if let expiration = key.expiration, expiration <= Self.nowMilliseconds() {
                return .failure(failure("api key is expired"))
            }
            guard secret.utf8.count <= 72, Bcrypt.verify(secret, hash: key.secretHash) else {
                return .failure(failure("invalid credentials for API key [\(id)]"))
            }
            return .success((authentication(of: key), key.expiration))
        }
    }

    func authentication(of user: UserRecord) throws(StoreError) -> Authentication {
        let reserved = user.username == Self.elasticUser
        var descriptors: [RoleDescriptor] = []
        for role in user.roles {
            if let descriptor = try roleDescriptor(role) { descriptors.append(descriptor) }
        }
        return Authentication(
            kind: .realm,
            username: user.username,
            roles: user.roles,
            realmName: reserved ? "reserved" : "default_native",
            realmType: reserved ? "reserved" : "native",
            layers: [Permission(descriptors)],
            fullName: user.fullName,
            email: user.email,
            metadata: user.metadata
        )
    }

    func authentication(of key: APIKeyRecord) -> Authentication {
        // A key without descriptors has its owner's privileges (as they were when it was made or last updated).
        var layers = [Permission(key.limitedBy.map(\.1))]
        if !key.roleDescriptors.isEmpty { layers.insert(Permission(key.roleDescriptors.map(\.1)), at: 0) }
        return Authentication(
            kind: .apiKey,
            username: key.owner,
            roles: [],
            realmName: "_es_api_key",
            realmType: "_es_api_key",
            layers: layers,
            metadata: [:],
            apiKeyID: key.id,
            apiKeyName: key.name
        )
    }

    /// A built-in or stored role; `nil` for an unknown name (a user may name a role not created yet, as in
    /// Elasticsearch).
    func roleDescriptor(_ name: String) throws(StoreError) -> RoleDescriptor? {
        if let builtIn = RoleDescriptor.builtIn[name] { return builtIn }
        return try database.role(name)
    }

    static func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Elasticsearch's 401, with the schemes it accepts in `WWW-Authenticate`.
    static func unauthenticated(_ reason: String, detail: String? = nil) -> StoreError {
        var metadata: JSONObject = [:]
        if let detail { metadata["additional_unsuccessful_credentials"] = .string(detail) }
        metadata["header"] = ["WWW-Authenticate": .array(wwwAuthenticate.map { .string($0) })]
        return .security(reason, status: 401, metadata: metadata)
    }

    public static let wwwAuthenticate = [
        "Basic realm=\"security\", charset=\"UTF-8\"", "Bearer realm=\"security\"", "ApiKey",
    ]

    // MARK: Cache

    private func cachedAuthentication(_ key: String) -> Authentication? {
        refreshVersions()
        let now = ContinuousClock.now
        let nowMilliseconds = Self.nowMilliseconds()
        return cache.withLockedValue { cache in
            guard let entry = cache.entries[key] else { return nil }
            if entry.expires <= now || entry.keyExpiration.map({ $0 <= nowMilliseconds }) == true {
                cache.entries.removeValue(forKey: key)
                return nil
            }
            return entry.authentication
        }
    }

    private func store(_ authentication: Authentication, keyExpiration: Int64?, under key: String) {
        let expires = ContinuousClock.now + configuration.cacheTTL
        cache.withLockedValue { cache in
            if cache.entries.count >= configuration.cacheSize {
                let now = ContinuousClock.now
                cache.entries = cache.entries.filter { $0.value.expires > now }
                if cache.entries.count >= configuration.cacheSize { cache.entries.removeAll() }
            }
            cache.entries[key] = CacheEntry(
                authentication: authentication,
                expires: expires,
                keyExpiration: keyExpiration
            )
        }
    }

    /// Drops the cache when this process wrote to the security index, or (checked at most once a second, as it costs
    /// a read) another process did.
    private func refreshVersions() {
        let local = database.localVersion
        let now = ContinuousClock.now
        let checkExternal = cache.withLockedValue { cache in
            if cache.localVersion != local {
                cache.entries.removeAll()
                cache.localVersion = local
            }
            guard cache.externalChecked.duration(to: now) >= .seconds(1) else { return false }
            cache.externalChecked = now
            return true
        }
        guard checkExternal else { return }
        let external = database.externalVersion()
        cache.withLockedValue { cache in
            if cache.externalVersion != external {
                cache.entries.removeAll()
                cache.externalVersion = external
            }
        }
    }

    /// Empties the cache (`_clear_cache` APIs).
    func clearCache() {
        cache.withLockedValue { $0.entries.removeAll() }
    }
}

/// The credentials of an `Authorization` header.
enum Credentials {
    case none
    case malformed(scheme: String)
    case basic(username: String, password: String)
    case apiKey(id: String, secret: String)
    case bearer(String)

    init(header: String?) {
        guard let header, !header.isEmpty else {
            self = .none
            return
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let scheme = parts.first.map { $0.lowercased() } ?? ""
        let value = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        switch scheme {
        case "basic":
            guard let pair = Self.decodePair(value) else {
                self = .malformed(scheme: "basic")
                return
            }
            self = .basic(username: pair.0, password: pair.1)
        case "apikey":
            guard let pair = Self.decodePair(value), !pair.0.isEmpty, !pair.1.isEmpty else {
                self = .malformed(scheme: "ApiKey")
                return
            }
            self = .apiKey(id: pair.0, secret: pair.1)
        case "bearer":
            self = value.isEmpty ? .malformed(scheme: "Bearer") : .bearer(value)
        default:
            // Elasticsearch ignores schemes it does not know, and then finds no credentials.
            self = .none
        }
    }

    /// `base64(first:second)`, split at the first colon. A NUL byte makes the pair malformed: bcrypt reads its input
    /// as a C string and would ignore what follows it.
    private static func decodePair(_ value: String) -> (String, String)? {
        guard let data = Data(base64Encoded: value), !data.contains(0), let text = String(data: data, encoding: .utf8),
            let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

extension StoreError {
    /// Elasticsearch's `action_request_validation_exception` with one message.
    static func validation(_ message: String) -> StoreError {
        StoreError(
            type: "action_request_validation_exception",
            reason: "Validation Failed: 1: \(message);",
            status: 400
        )
    }
}

extension Digest {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
