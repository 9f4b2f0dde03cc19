import Foundation
import QuarryCore
import QuarrySearch

/// The API key APIs: create, grant, get, query, update, invalidate. A key belongs to the user who created it (or for
/// whom it was granted); its privileges are its role descriptors limited by its owner's roles as they were when the
/// key was created or last updated, as in Elasticsearch.
extension ElasticsearchAPI {
    /// The parts of a create or grant body.
    private struct KeyRequest {
        var name: String
        var expiration: Int64?
        var roleDescriptors: [(String, RoleDescriptor)]
        var metadata: JSONObject
    }

    private func keyRequest(_ body: JSONObject, requireName: Bool = true) throws(StoreError) -> KeyRequest {
        for key in body.keys where !["name", "expiration", "role_descriptors", "metadata", "type"].contains(key) {
            throw StoreError(
                type: "x_content_parse_exception",
                reason: "[1:2] [api_key_request] unknown field [\(key)]",
                status: 400
            )
        }
        let name = body["name"]?.stringValue ?? ""
        if requireName, name.isEmpty { throw .validation("api key name is required") }
        if name.count > 1024 || name.hasPrefix("_") {
            throw .validation("api key name may not be more than [1024] characters long nor begin with [_]")
        }
        var expiration: Int64?
        if let text = body["expiration"]?.stringValue {
            let milliseconds = try SearchRequest.timeValueMilliseconds(text, setting: "expiration")
            guard milliseconds > 0 else { throw .validation("api key expiration must be in the future") }
            expiration = ElasticsearchSecurity.nowMilliseconds() + milliseconds
        }
        let metadata = try Self.keyMetadata(body["metadata"])
        return KeyRequest(
            name: name,
            expiration: expiration,
            roleDescriptors: try Self.roleDescriptors(body["role_descriptors"]),
            metadata: metadata ?? [:]
        )
    }

    private static func keyMetadata(_ json: JSON?) throws(StoreError) -> JSONObject? {
        guard let json else { return nil }
        guard case .object(let metadata) = json else { throw .validation("metadata must be an object") }
        if let reserved = metadata.keys.first(where: { $0.hasPrefix("_") }) {
            throw .validation("API key metadata keys may not start with [_] ([\(reserved)])")
        }
        return metadata
    }

    private static func roleDescriptors(_ json: JSON?) throws(StoreError) -> [(String, RoleDescriptor)] {
        guard let json else { return [] }
        guard case .object(let object) = json else { throw .validation("role_descriptors must be an object") }
        var descriptors: [(String, RoleDescriptor)] = []
        for (name, descriptor) in object {
            descriptors.append((name, try RoleDescriptor(parsing: descriptor, role: name)))
        }
        return descriptors
    }

    /// Creates a key for `owner` and answers as create does.
    private func mint(
        _ request: KeyRequest,
        owner: String,
        realm: String,
        limitedBy: [(String, RoleDescriptor)],
        security: ElasticsearchSecurity
    ) throws(StoreError) -> ESResponse {
        let key = try security.mintAPIKey(
            name: request.name,
            expiration: request.expiration,
            roleDescriptors: request.roleDescriptors,
            metadata: request.metadata,
            owner: owner,
            realm: realm,
            limitedBy: limitedBy
        )
        return ESResponse(json: key.json)
    }

    func createAPIKey(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let caller = request.authentication
        let keyRequest = try keyRequest(try request.requiredObject())
        switch caller.kind {
        case .anonymous:
            throw .security("api keys cannot be created by the anonymous user", status: 403)
        case .apiKey:
            // A key may create a key only with explicitly empty descriptors, as in Elasticsearch: the new key can
            // then do nothing its creator could not.
            guard !keyRequest.roleDescriptors.isEmpty, keyRequest.roleDescriptors.allSatisfy({ $0.1.isEmpty }) else {
                throw .illegalArgument(
                    "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)"
                )
            }
            return try mint(keyRequest, owner: caller.username, realm: "_es_api_key", limitedBy: [], security: security)
        case .realm, .internal, .token:
            return try mint(
                keyRequest,
                owner: caller.username,
                realm: caller.realmName,
                limitedBy: try security.namedDescriptors(caller.roles),
                security: security
            )
        }
    }

    func grantAPIKey(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let body = try request.requiredObject()
        guard body["grant_type"]?.stringValue == "password" else {
            throw .validation("grant_type [\(body["grant_type"]?.stringValue ?? "")] is not supported: use [password]")
        }
        if body["run_as"] != nil { throw .validation("run_as is not supported") }
        guard let username = body["username"]?.stringValue, let password = body["password"]?.stringValue else {
            throw .validation("username and password are required with grant_type [password]")
        }
        guard let keyBody = body["api_key"]?.objectValue else { throw .validation("api_key is required") }
        let keyRequest = try keyRequest(keyBody)
        let owner = try security.authenticate(
            username: username,
            password: password,
            remoteAddress: request.remoteAddress,
            path: "/_security/api_key/grant"
        )
        return try mint(
            keyRequest,
            owner: owner.username,
            realm: owner.realmName,
            limitedBy: try security.namedDescriptors(owner.roles),
            security: security
        )
    }

    /// Keys the caller may see or manage: all with `manage_api_key`, its own with `manage_own_api_key`, and an API key
    /// itself.
    private func visibleKeys(
        _ caller: Authentication,
        action: String,
        security: ElasticsearchSecurity
    ) throws(StoreError) -> [APIKeyRecord] {
        let keys = try security.database.apiKeys()
        if caller.allowsCluster(action), !caller.ownAPIKeysOnly { return keys }
        if caller.allowsCluster(action) || caller.kind == .apiKey {
            return keys.filter { key in
                if let own = caller.apiKeyID { return key.id == own }
                return key.owner == caller.username
            }
        }
        throw caller.clusterDenied(action)
    }

    private func isActive(_ key: APIKeyRecord) -> Bool {
        key.invalidated == nil && (key.expiration.map { $0 > ElasticsearchSecurity.nowMilliseconds() } ?? true)
    }

    func getAPIKeys(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let caller = request.authentication
        let parameters = request.parameters
        var keys = try visibleKeys(caller, action: Action.getAPIKey, security: security)
        if try request.flag("owner") { keys = keys.filter { $0.owner == caller.username } }
        if let id = parameters["id"] { keys = keys.filter { $0.id == id } }
        if let name = parameters["name"] { keys = keys.filter { Wildcard.matches(name, $0.name ?? "") } }
        if let username = parameters["username"] { keys = keys.filter { $0.owner == username } }
        if let realm = parameters["realm_name"] { keys = keys.filter { $0.realm == realm } }
        if try request.flag("active_only") { keys = keys.filter(isActive) }
        let withLimitedBy = try request.flag("with_limited_by")
        return ESResponse(json: ["api_keys": .array(keys.map { $0.json(withLimitedBy: withLimitedBy) })])
    }

    func queryAPIKeys(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let caller = request.authentication
        let body = try request.json()?.objectValue ?? [:]
        var keys = try visibleKeys(caller, action: Action.queryAPIKey, security: security)
        if let query = body["query"] {
            var matching: [APIKeyRecord] = []
            for key in keys where try APIKeyQuery.matches(query, key) { matching.append(key) }
            keys = matching
        }
        let from = Int(body["from"]?.intValue ?? 0)
        let size = Int(body["size"]?.intValue ?? 10)
        guard from >= 0, size >= 0 else { throw .illegalArgument("[from] and [size] must not be negative") }
        let page = keys.dropFirst(from).prefix(size)
        let withLimitedBy = try request.flag("with_limited_by")
        return ESResponse(json: [
            "total": .int(Int64(keys.count)),
            "count": .int(Int64(page.count)),
            "api_keys": .array(page.map { $0.json(withLimitedBy: withLimitedBy) }),
        ])
    }

    func invalidateAPIKeys(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let caller = request.authentication
        let body = try request.requiredObject()
        var keys = try visibleKeys(caller, action: Action.invalidateAPIKey, security: security)
        var filtered = false
        if let ids = body["ids"]?.arrayValue?.compactMap(\.stringValue) ?? body["id"]?.stringValue.map({ [$0] }) {
            keys = keys.filter { ids.contains($0.id) }
            filtered = true
        }
        if let name = body["name"]?.stringValue {
            keys = keys.filter { Wildcard.matches(name, $0.name ?? "") }
            filtered = true
        }
        if body["owner"]?.boolValue == true {
            keys = keys.filter { $0.owner == caller.username }
            filtered = true
        }
        if let username = body["username"]?.stringValue {
            keys = keys.filter { $0.owner == username }
            filtered = true
        }
        if let realm = body["realm_name"]?.stringValue {
            keys = keys.filter { $0.realm == realm }
            filtered = true
        }
        guard filtered else {
            throw .validation(
                "One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false"
            )
        }
        let ids: [String] = keys.map { $0.id }
        let outcome = try security.database.invalidateAPIKeys(ids, at: ElasticsearchSecurity.nowMilliseconds())
        return ESResponse(json: [
            "invalidated_api_keys": .array(outcome.invalidated.map { JSON.string($0) }),
            "previously_invalidated_api_keys": .array(outcome.previously.map { JSON.string($0) }),
            "error_count": 0,
        ])
    }

    /// Applies an update body to one of the caller's keys; true when something changed.
    private func update(
        _ id: String,
        _ body: JSONObject,
        caller: Authentication,
        security: ElasticsearchSecurity
    ) throws(StoreError) -> Bool {
        guard [.realm, .internal, .token].contains(caller.kind) else {
            throw .illegalArgument(
                "authentication via API key not supported: only the owner user can update an API key"
            )
        }
        try caller.checkCluster(Action.updateAPIKey)
        guard var key = try security.database.apiKey(id), key.owner == caller.username else {
            throw .resourceNotFound("no API key owned by requesting user found for ID [\(id)]")
        }
        if key.invalidated != nil { throw .illegalArgument("cannot update invalidated API key [\(id)]") }
        if !isActive(key) { throw .illegalArgument("cannot update expired API key [\(id)]") }
        let before = key
        if body["role_descriptors"] != nil { key.roleDescriptors = try Self.roleDescriptors(body["role_descriptors"]) }
        if let metadata = try Self.keyMetadata(body["metadata"]) { key.metadata = metadata }
        if let text = body["expiration"]?.stringValue {
            key.expiration =
                ElasticsearchSecurity.nowMilliseconds()
                + (try SearchRequest.timeValueMilliseconds(text, setting: "expiration"))
        }
        key.limitedBy = try security.namedDescriptors(caller.roles)
        guard key != before else { return false }
        try security.database.putAPIKey(key)
        return true
    }

    func updateAPIKey(_ request: ESRequest, _ id: String) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let body = try request.json()?.objectValue ?? [:]
        for key in body.keys where !["role_descriptors", "metadata", "expiration"].contains(key) {
            throw StoreError(
                type: "x_content_parse_exception",
                reason: "[1:2] [update_api_key_request] unknown field [\(key)]",
                status: 400
            )
        }
        let updated = try update(id, body, caller: request.authentication, security: security)
        return ESResponse(json: ["updated": .bool(updated)])
    }

    func bulkUpdateAPIKeys(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        var body = try request.requiredObject()
        guard let ids = body.removeValue(forKey: "ids")?.arrayValue?.compactMap(\.stringValue), !ids.isEmpty else {
            throw .validation("Field [ids] cannot be empty")
        }
        var updated: [JSON] = []
        var noops: [JSON] = []
        var errors = JSONObject()
        for id in ids {
            do throws(StoreError) {
                if try update(id, body, caller: request.authentication, security: security) {
                    updated.append(.string(id))
                } else {
                    noops.append(.string(id))
                }
            } catch {
                errors[id] = error.json
            }
        }
        var response: JSONObject = ["updated": .array(updated), "noops": .array(noops)]
        if !errors.isEmpty { response["errors"] = ["count": .int(Int64(errors.count)), "details": .object(errors)] }
        return ESResponse(json: .object(response))
    }
}

/// The query language of `_security/_query/api_key`: `ids`, `match_all`, `term`, `terms`, `prefix`, `wildcard`,
/// `exists`, `range` on `creation`/`expiration`, and `bool` over them, on the fields Elasticsearch exposes.
enum APIKeyQuery {
    static func value(_ field: String, _ key: APIKeyRecord) -> [String] {
        switch field {
        case "id", "_id": return [key.id]
        case "name": return key.name.map { [$0] } ?? []
        case "username": return [key.owner]
        case "realm_name": return [key.realm]
        case "type": return ["rest"]
        case "invalidated": return [key.invalidated != nil ? "true" : "false"]
        case "creation": return [String(key.created)]
        case "expiration": return key.expiration.map { [String($0)] } ?? []
        default:
            if field.hasPrefix("metadata.") {
                let path = field.dropFirst("metadata.".count)
                guard let value = key.metadata[String(path)] else { return [] }
                return [value.stringValue ?? value.serialized()]
            }
            return []
        }
    }

    private static func text(_ json: JSON) -> String {
        if case .object(let object) = json, let value = object["value"] { return text(value) }
        return json.stringValue ?? json.serialized()
    }

    static func matches(_ query: JSON, _ key: APIKeyRecord) throws(StoreError) -> Bool {
        guard case .object(let object) = query, let (kind, body) = object.first else {
            throw .parsing("[query] must be an object with one query")
        }
        let clause = body.objectValue ?? [:]
        switch kind {
        case "match_all":
            return true
        case "ids":
            return (clause["values"]?.arrayValue ?? []).contains { $0.stringValue == key.id }
        case "term":
            guard let (field, expected) = clause.first else { return false }
            return value(field, key).contains(text(expected))
        case "terms":
            guard let (field, expected) = clause.first else { return false }
            let wanted = (expected.arrayValue ?? []).map(text)
            return value(field, key).contains { wanted.contains($0) }
        case "prefix":
            guard let (field, expected) = clause.first else { return false }
            return value(field, key).contains { $0.hasPrefix(text(expected)) }
        case "wildcard":
            guard let (field, expected) = clause.first else { return false }
            return value(field, key).contains { Wildcard.matches(text(expected), $0) }
        case "exists":
            return !value(clause["field"]?.stringValue ?? "", key).isEmpty
        case "range":
            guard let (field, bounds) = clause.first, let number = value(field, key).first.flatMap({ Int64($0) })
            else { return false }
            let limits = bounds.objectValue ?? [:]
            if let gte = limits["gte"]?.intValue, number < gte { return false }
            if let gt = limits["gt"]?.intValue, number <= gt { return false }
            if let lte = limits["lte"]?.intValue, number > lte { return false }
            if let lt = limits["lt"]?.intValue, number >= lt { return false }
            return true
        case "bool":
            func list(_ name: String) -> [JSON] {
                guard let value = clause[name] else { return [] }
                return value.arrayValue ?? [value]
            }
            for required in list("must") + list("filter") where try !matches(required, key) { return false }
            for excluded in list("must_not") where try matches(excluded, key) { return false }
            let should = list("should")
            if !should.isEmpty {
                var any = false
                for optional in should where try matches(optional, key) { any = true }
                if !any { return false }
            }
            return true
        default:
            throw .illegalArgument("Query type [\(kind)] is not currently supported in this context")
        }
    }
}
