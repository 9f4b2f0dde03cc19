public import QuarryCore
import QuarrySearch

/// Who a request comes from and what it may do: a user of the native realm, an API key (on behalf of its owner), the
/// anonymous user when an anonymous role is configured, or the process itself for in-process calls.
public struct Authentication: Sendable {
    public enum Kind: String, Sendable {
        case realm
        case apiKey = "api_key"
        case token
        case anonymous
        /// Quarry's own in-process calls (stories' searches on the embedded store, the CLI): not a network caller.
        case `internal`
    }

    public var kind: Kind
    public var username: String
    public var roles: [String]
    public var fullName: String?
    public var email: String?
    public var metadata: JSONObject
    public var realmName: String
    public var realmType: String
    public var apiKeyID: String?
    public var apiKeyName: String?
    /// Every layer must allow an action: a user has one, an API key two (its descriptors and its owner's).
    let layers: [Permission]

    init(
        kind: Kind,
        username: String,
        roles: [String],
        realmName: String,
        realmType: String,
        layers: [Permission],
        fullName: String? = nil,
        email: String? = nil,
        metadata: JSONObject = [:],
        apiKeyID: String? = nil,
        apiKeyName: String? = nil
    ) {
        self.kind = kind
        self.username = username
        self.roles = roles
        self.realmName = realmName
        self.realmType = realmType
        self.layers = layers
        self.fullName = fullName
        self.email = email
        self.metadata = metadata
        self.apiKeyID = apiKeyID
        self.apiKeyName = apiKeyName
    }

    /// The process itself, with every privilege.
    public static let `internal` = Authentication(
        kind: .internal,
        username: "_system",
        roles: ["superuser"],
        realmName: "__attach",
        realmType: "__attach",
        layers: [Permission([RoleDescriptor.builtIn["superuser"]!])]
    )

    /// The body of `GET /_security/_authenticate`.
    public var json: JSON {
        var object: JSONObject = [
            "username": .string(username),
            "roles": .array(roles.map { .string($0) }),
            "full_name": fullName.map { .string($0) } ?? .null,
            "email": email.map { .string($0) } ?? .null,
            "metadata": .object(metadata),
            "enabled": true,
            "authentication_realm": ["name": .string(realmName), "type": .string(realmType)],
            "lookup_realm": ["name": .string(realmName), "type": .string(realmType)],
            "authentication_type": .string(kind == .internal ? "internal" : kind.rawValue),
        ]
        if let apiKeyID {
            object["api_key"] = ["id": .string(apiKeyID), "name": apiKeyName.map { .string($0) } ?? .null]
        }
        return .object(object)
    }

    // MARK: Authorization

    func allowsCluster(_ action: String) -> Bool {
        layers.allSatisfy { $0.allowsCluster(action) }
    }

    func allowsIndex(_ action: String, on name: String) -> Bool {
        layers.allSatisfy { $0.allowsIndex(action, on: name) }
    }

    /// Whether API key actions are limited to the caller's own keys.
    var ownAPIKeysOnly: Bool { layers.contains(where: \.ownAPIKeysOnly) }

    /// The caller, as a 403 names it.
    private var subject: String {
        if let apiKeyID { return "API key id [\(apiKeyID)] of user [\(username)]" }
        return "user [\(username)] with effective roles [\(roles.sorted().joined(separator: ","))]"
    }

    /// Elasticsearch's 403 for a cluster action.
    func clusterDenied(_ action: String) -> StoreError {
        let granting = Privileges.granting(action, in: Privileges.cluster)
        return .security(
            "action [\(action)] is unauthorized for \(subject)"
                + (granting.isEmpty
                    ? "" : ", this action is granted by the cluster privileges [\(granting.joined(separator: ","))]"),
            status: 403
        )
    }

    /// Elasticsearch's 403 for an index action.
    func indicesDenied(_ action: String, _ names: [String]) -> StoreError {
        let granting = Privileges.granting(action, in: Privileges.index)
        return .security(
            "action [\(action)] is unauthorized for \(subject) on indices [\(names.joined(separator: ","))]"
                + (granting.isEmpty
                    ? "" : ", this action is granted by the index privileges [\(granting.joined(separator: ","))]"),
            status: 403
        )
    }

    /// Throws the 403 unless the cluster action is allowed.
    func checkCluster(_ action: String) throws(StoreError) {
        guard allowsCluster(action) else { throw clusterDenied(action) }
    }

    /// Authorizes an index action on an index expression, as Elasticsearch's security does: wildcards (and `_all`, and
    /// no index at all) expand only to the indices and aliases the caller may use, so a search on `*` by a user with
    /// `read` on `packetbeat-*` sees only those; an explicit name the caller may not use is a 403, whether it exists
    /// or not. An alias is allowed when its own name is, or every index it points to is.
    /// - Returns: The expression to use instead, or `nil` to keep it as it is.
    func authorizeIndices(
        _ expression: String?,
        action: String,
        store: EmbeddedStore
    ) throws(StoreError) -> String? {
        if layers.allSatisfy({ $0.allowsEveryIndex(action) }) { return nil }
        let table = store.indexNamesWithAliases()
        let parts = (expression ?? "_all").split(separator: ",", omittingEmptySubsequences: true).map(String.init)
        var allowed: [String] = []
        var denied: [String] = []
        var seenWildcard = false
        for part in parts.isEmpty ? ["_all"] : parts {
            if part.hasPrefix("-"), seenWildcard {
                allowed.append(part)
            } else if part == "_all" || part.contains("*") {
                seenWildcard = true
                let pattern = part == "_all" ? "*" : part
                for (index, aliases) in table {
                    if index.hasPrefix("."), !pattern.hasPrefix(".") { continue }
                    if Wildcard.matches(pattern, index), allowsIndex(action, on: index) {
                        allowed.append(index)
                    }
                    for alias in aliases where Wildcard.matches(pattern, alias) && allowsIndex(action, on: alias) {
                        allowed.append(alias)
                    }
                }
            } else if allowsIndex(action, on: part) {
                allowed.append(part)
            } else {
                let targets = table.filter { $0.aliases.contains(part) }.map(\.index)
                if !targets.isEmpty, targets.allSatisfy({ allowsIndex(action, on: $0) }) {
                    allowed.append(part)
                } else {
                    denied.append(part)
                }
            }
        }
        if !denied.isEmpty { throw indicesDenied(action, denied) }
        var unique: [String] = []
        for name in allowed where !unique.contains(name) { unique.append(name) }
        // Nothing the caller may use matched: an expression that resolves to no index at all.
        if !unique.contains(where: { !$0.hasPrefix("-") }) { return "*,-*" }
        return unique.joined(separator: ",")
    }

    /// Every index with its aliases, or `nil` when the caller may do `actions` on every index anyway (then no
    /// per-name check needs the table).
    func indexTable(for actions: [String], store: EmbeddedStore) -> [(index: String, aliases: [String])]? {
        if actions.allSatisfy({ action in layers.allSatisfy { $0.allowsEveryIndex(action) } }) { return nil }
        return store.indexNamesWithAliases()
    }

    /// Authorizes an action on one index or alias named literally (a `_bulk` or `_mget` item, a document write): the
    /// name itself, or for an alias every index it points to.
    func checkNamed(
        _ action: String,
        _ name: String,
        table: [(index: String, aliases: [String])]?
    ) throws(StoreError) {
        guard let table, !allowsIndex(action, on: name) else { return }
        let targets = table.filter { $0.aliases.contains(name) }.map(\.index)
        if !targets.isEmpty, targets.allSatisfy({ allowsIndex(action, on: $0) }) { return }
        throw indicesDenied(action, [name])
    }

    /// Authorizes a write of one document to `index`: the write action, and creating the index when it does not
    /// exist yet (`auto_configure` or `create_index`), as Elasticsearch requires.
    func checkDocumentWrite(
        _ action: String,
        index: String,
        table: [(index: String, aliases: [String])]?
    ) throws(StoreError) {
        guard let table else { return }
        try checkNamed(action, index, table: table)
        let exists = table.contains { $0.index == index || $0.aliases.contains(index) }
        if !exists, !allowsIndex(Action.autoCreate, on: index) {
            throw indicesDenied(Action.autoCreate, [index])
        }
    }
}

extension StoreError {
    /// Elasticsearch's `security_exception`.
    static func security(_ reason: String, status: Int, metadata: JSONObject = [:]) -> StoreError {
        StoreError(type: "security_exception", reason: reason, status: status, metadata: metadata)
    }
}
