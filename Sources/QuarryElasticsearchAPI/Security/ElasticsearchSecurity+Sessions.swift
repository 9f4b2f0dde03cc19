import Foundation
public import QuarrySearch

/// The web application's sign-ins and API tokens, kept with Elasticsearch's tokens in the security index: the same
/// users, the same throttle, and values stored only as SHA-256 hashes. A session or token is checked against its
/// user on every use, so disabling or deleting the user ends it at once.
extension ElasticsearchSecurity {
    /// A sign-in lasts 12 hours, a working day.
    public static let sessionLifetime: Duration = .seconds(12 * 3600)

    /// Checks a password typed into the sign-in form, counted and throttled as a `Basic` header would be (wait
    /// ``attemptDelay(authorization:remoteAddress:)`` first). Returns nil for a wrong name or password.
    public func signIn(username: String, password: String, remoteAddress: String?) -> Authentication? {
        let basic = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        return try? authenticate(authorization: basic, remoteAddress: remoteAddress, path: "/login").get()
    }

    /// The `Authorization` header whose failures ``signIn(username:password:remoteAddress:)`` counts, for
    /// ``attemptDelay(authorization:remoteAddress:)``.
    public static func signInKey(username: String) -> String {
        "Basic " + Data("\(username):".utf8).base64EncodedString()
    }

    /// Starts a session for `username`; returns the cookie's value.
    public func startSession(for username: String) throws(StoreError) -> String {
        let now = Self.nowMilliseconds()
        // Ended sessions and tokens are swept here, at a rate people sign in.
        try database.removeTokens(endedBefore: now - 7 * 24 * 3600 * 1000)
        return try newToken(
            kind: "session",
            for: username,
            at: now,
            expiration: now + Self.sessionLifetime.components.seconds * 1000
        )
    }

    /// Stores a new random token of `kind` for `username` (its SHA-256 only) and returns it, after `prefix`.
    private func newToken(
        prefix: String = "",
        kind: String,
        for username: String,
        at now: Int64,
        expiration: Int64
    ) throws(StoreError) -> String {
        let token = prefix + Self.randomToken(bytes: 32)
        try database.putToken(
            TokenRecord(
                hash: Self.tokenHash(token),
                kind: kind,
                username: username,
                created: now,
                expiration: expiration,
                pair: nil
            )
        )
        return token
    }

    /// The signed-in user of a session cookie; nil when it is unknown, ended, expired, or its user is disabled.
    public func session(_ token: String) -> Authentication? {
        authentication(ofToken: token, kind: "session")
    }

    /// Signs out: the session ends on the server, whoever holds a copy of the cookie.
    public func endSession(_ token: String) throws(StoreError) {
        _ = try database.invalidateTokens(hashes: [Self.tokenHash(token)], username: nil, at: Self.nowMilliseconds())
    }

    /// Issues `username`'s web API token (`Authorization: Bearer …` on `/api/v1`), replacing any earlier one.
    public func issueUserToken(for username: String) throws(StoreError) -> String {
        guard try database.user(username) != nil else {
            throw StoreError(type: "resource_not_found_exception", reason: "user [\(username)] not found", status: 404)
        }
        let now = Self.nowMilliseconds()
        _ = try database.invalidateTokens(hashes: [], username: username, kinds: ["user_api"], at: now)
        return try newToken(prefix: "qrt_", kind: "user_api", for: username, at: now, expiration: .max)
    }

    /// A web API token for the commands run beside `quarry serve` (left in its `serve.json`): it acts as
    /// `username` until ``endSession(_:)`` ends it when serve stops, and is not the user's own token, which it
    /// leaves as it is.
    public func issueLocalCommandToken(for username: String) throws(StoreError) -> String {
        try newToken(prefix: "qrl_", kind: "local_command", for: username, at: Self.nowMilliseconds(), expiration: .max)
    }

    /// The user of a web API token (a user's own, or serve's for its local commands); nil when it is unknown,
    /// replaced, ended, or its user is disabled.
    public func userToken(_ token: String) -> Authentication? {
        authentication(ofToken: token, kinds: ["user_api", "local_command"])
    }

    private func authentication(ofToken token: String, kind: String) -> Authentication? {
        authentication(ofToken: token, kinds: [kind])
    }

    private func authentication(ofToken token: String, kinds: Set<String>) -> Authentication? {
        guard let record = try? database.token(hash: Self.tokenHash(token)), kinds.contains(record.kind),
            record.invalidated == nil, record.expiration > Self.nowMilliseconds(),
            let user = try? database.user(record.username), user.enabled
        else { return nil }
        return try? authentication(of: user)
    }
}
