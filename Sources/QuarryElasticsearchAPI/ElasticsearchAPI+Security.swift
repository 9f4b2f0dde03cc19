import Foundation
import QuarryCore
import QuarrySearch

/// The `_security` APIs: who am I, users, roles, application privileges, API keys, privilege checks and caches, with
/// Elasticsearch's paths, bodies, responses and errors.
extension ElasticsearchAPI {
    static func addSecurityRoutes(
        _ add: ([ESRequest.Method], String, RouteAccess, @escaping Handler) -> Void
    ) {
        add([.get], "/_security/_authenticate", .authenticated) { api, request, _ throws(StoreError) in
            ESResponse(json: request.authentication.json)
        }
        add([.get, .post], "/_security/user/_has_privileges", .authenticated) { api, request, _ throws(StoreError) in
            try api.hasPrivileges(request)
        }
        add([.put, .post], "/_security/user/_password", .authenticated) { api, request, _ throws(StoreError) in
            try api.changePassword(request, nil)
        }
        add([.put, .post], "/_security/user/{username}/_password", .authenticated) {
            api,
            request,
            c throws(StoreError) in
            try api.changePassword(request, c["username"])
        }
        for (suffix, enabled) in [("_enable", true), ("_disable", false)] {
            add([.put, .post], "/_security/user/{username}/\(suffix)", .cluster(Action.setEnabled)) {
                api,
                request,
                c throws(StoreError) in
                try api.setUserEnabled(request, c["username"]!, enabled)
            }
        }
        add([.put, .post], "/_security/user/{username}", .cluster(Action.putUser)) {
            api,
            request,
            c throws(StoreError) in
            try api.putUser(request, c["username"]!)
        }
        add([.get], "/_security/user", .cluster(Action.getUser)) { api, request, _ throws(StoreError) in
            try api.getUsers(request, nil)
        }
        add([.get], "/_security/user/{username}", .cluster(Action.getUser)) { api, request, c throws(StoreError) in
            try api.getUsers(request, c["username"])
        }
        add([.delete], "/_security/user/{username}", .cluster(Action.deleteUser)) {
            api,
            request,
            c throws(StoreError) in
            try api.deleteUser(request, c["username"]!)
        }
        add([.put, .post], "/_security/role/{name}", .cluster(Action.putRole)) { api, request, c throws(StoreError) in
            try api.putRole(request, c["name"]!)
        }
        add([.get], "/_security/role", .cluster(Action.getRole)) { api, request, _ throws(StoreError) in
            try api.getRoles(request, nil)
        }
        add([.get], "/_security/role/{name}", .cluster(Action.getRole)) { api, request, c throws(StoreError) in
            try api.getRoles(request, c["name"])
        }
        add([.delete], "/_security/role/{name}", .cluster(Action.deleteRole)) { api, request, c throws(StoreError) in
            try api.deleteRole(request, c["name"]!)
        }
        add([.put, .post], "/_security/privilege", .cluster(Action.putPrivileges)) {
            api,
            request,
            _ throws(StoreError) in
            try api.putApplicationPrivileges(request)
        }
        add([.get], "/_security/privilege", .cluster(Action.getPrivileges)) { api, request, _ throws(StoreError) in
            try api.getApplicationPrivileges(request, nil, nil)
        }
        add([.get], "/_security/privilege/{application}", .cluster(Action.getPrivileges)) {
            api,
            request,
            c throws(StoreError) in
            try api.getApplicationPrivileges(request, c["application"], nil)
        }
        add([.get], "/_security/privilege/{application}/{name}", .cluster(Action.getPrivileges)) {
            api,
            request,
            c throws(StoreError) in
            try api.getApplicationPrivileges(request, c["application"], c["name"])
        }
        add([.delete], "/_security/privilege/{application}/{name}", .cluster(Action.deletePrivileges)) {
            api,
            request,
            c throws(StoreError) in
            try api.deleteApplicationPrivileges(request, c["application"]!, c["name"]!)
        }
        add([.post, .put], "/_security/api_key", .cluster(Action.createAPIKey)) { api, request, _ throws(StoreError) in
            try api.createAPIKey(request)
        }
        add([.get], "/_security/api_key", .authenticated) { api, request, _ throws(StoreError) in
            try api.getAPIKeys(request)
        }
        add([.delete], "/_security/api_key", .authenticated) { api, request, _ throws(StoreError) in
            try api.invalidateAPIKeys(request)
        }
        add([.post], "/_security/api_key/grant", .cluster(Action.grantAPIKey)) { api, request, _ throws(StoreError) in
            try api.grantAPIKey(request)
        }
        add([.post], "/_security/api_key/_bulk_update", .authenticated) { api, request, _ throws(StoreError) in
            try api.bulkUpdateAPIKeys(request)
        }
        add([.put], "/_security/api_key/{id}", .authenticated) { api, request, c throws(StoreError) in
            try api.updateAPIKey(request, c["id"]!)
        }
        add([.post], "/_security/api_key/{ids}/_clear_cache", .cluster(Action.clearAPIKeyCache)) {
            api,
            request,
            _ throws(StoreError) in
            try api.clearSecurityCache()
        }
        add([.get, .post], "/_security/_query/api_key", .authenticated) { api, request, _ throws(StoreError) in
            try api.queryAPIKeys(request)
        }
        add([.post], "/_security/oauth2/token", .cluster(Action.createToken)) { api, request, _ throws(StoreError) in
            try api.createToken(request)
        }
        add([.delete], "/_security/oauth2/token", .cluster(Action.invalidateToken)) {
            api,
            request,
            _ throws(StoreError) in
            try api.invalidateTokens(request)
        }
        add([.post], "/_security/realm/{realms}/_clear_cache", .cluster(Action.clearRealmCache)) {
            api,
            request,
            _ throws(StoreError) in
            try api.clearSecurityCache()
        }
    }

    /// The security index, or Elasticsearch's error when security is off.
    func enabledSecurity() throws(StoreError) -> ElasticsearchSecurity {
        guard let security else {
            throw .illegalArgument("security is not enabled on this API (it serves the process itself only)")
        }
        return security
    }

    // MARK: Users

    func putUser(_ request: ESRequest, _ username: String) throws(StoreError) -> ESResponse {
        let created = try enabledSecurity().putUser(username, body: .object(try request.requiredObject()))
        return ESResponse(json: ["created": .bool(created)])
    }

    private static func userJSON(_ user: UserRecord) -> JSON {
        [
            "username": .string(user.username),
            "roles": .array(user.roles.map { .string($0) }),
            "full_name": user.fullName.map { .string($0) } ?? .null,
            "email": user.email.map { .string($0) } ?? .null,
            "metadata": .object(user.metadata),
            "enabled": .bool(user.enabled),
        ]
    }

    func getUsers(_ request: ESRequest, _ names: String?) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let wanted = names.map { Set($0.split(separator: ",").map(String.init)) }
        var object = JSONObject()
        for user in try security.database.users() where wanted?.contains(user.username) ?? true {
            object[user.username] = Self.userJSON(user)
        }
        // Elasticsearch answers 404 with an empty object when none of the named users exists.
        return ESResponse(status: wanted != nil && object.isEmpty ? 404 : 200, json: .object(object))
    }

    func deleteUser(_ request: ESRequest, _ username: String) throws(StoreError) -> ESResponse {
        let found = try enabledSecurity().deleteUser(username)
        return ESResponse(status: found ? 200 : 404, json: ["found": .bool(found)])
    }

    func changePassword(_ request: ESRequest, _ named: String?) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let caller = request.authentication
        let username = named ?? caller.username
        // Users change their own password; changing another's takes manage_security.
        let own = (caller.kind == .realm || caller.kind == .token) && caller.username == username
        if !own { try caller.checkCluster(Action.changePassword) }
        let body = try request.requiredObject()
        guard let hash = try security.passwordHash(body) else {
            throw .validation("password must be specified")
        }
        guard var user = try security.database.user(username) else {
            throw .resourceNotFound("user [\(username)] does not exist")
        }
        user.passwordHash = hash
        try security.database.putUser(user)
        return ESResponse(json: [:])
    }

    func setUserEnabled(_ request: ESRequest, _ username: String, _ enabled: Bool) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        if !enabled, request.authentication.username == username {
            throw .validation("users may not update the enabled status of their own account")
        }
        guard var user = try security.database.user(username) else {
            throw .resourceNotFound("user [\(username)] does not exist")
        }
        user.enabled = enabled
        try security.database.putUser(user)
        return ESResponse(json: [:])
    }

    // MARK: Roles

    func putRole(_ request: ESRequest, _ name: String) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        try ElasticsearchSecurity.validateName(name, kind: "role name")
        if RoleDescriptor.builtIn[name] != nil {
            throw .validation("Role [\(name)] is reserved and may not be used.")
        }
        let descriptor = try RoleDescriptor(parsing: .object(try request.requiredObject()), role: name)
        let created = try security.database.putRole(name, descriptor)
        return ESResponse(json: ["role": ["created": .bool(created)]])
    }

    func getRoles(_ request: ESRequest, _ names: String?) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let wanted = names.map { Set($0.split(separator: ",").map(String.init)) }
        var object = JSONObject()
        for name in RoleDescriptor.builtIn.keys.sorted() where wanted?.contains(name) ?? false {
            object[name] = RoleDescriptor.builtIn[name]!.json
        }
        for (name, descriptor) in try security.database.roles() where wanted?.contains(name) ?? true {
            object[name] = descriptor.json
        }
        return ESResponse(status: wanted != nil && object.isEmpty ? 404 : 200, json: .object(object))
    }

    func deleteRole(_ request: ESRequest, _ name: String) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        if RoleDescriptor.builtIn[name] != nil {
            throw .validation("role [\(name)] is reserved and cannot be deleted")
        }
        let found = try security.database.deleteRole(name)
        return ESResponse(status: found ? 200 : 404, json: ["found": .bool(found)])
    }

    // MARK: Application privileges

    func putApplicationPrivileges(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        var records: [ApplicationPrivilegeRecord] = []
        for (application, privileges) in try request.requiredObject() {
            guard case .object(let byName) = privileges, !application.isEmpty else {
                throw .validation("application privileges must be an object of privilege names")
            }
            for (name, definition) in byName {
                let actions = definition["actions"]?.arrayValue?.compactMap(\.stringValue) ?? []
                guard !actions.isEmpty else {
                    throw .validation("Application privileges must have at least one action")
                }
                records.append(
                    ApplicationPrivilegeRecord(
                        application: application,
                        name: name,
                        actions: actions,
                        metadata: definition["metadata"]?.objectValue ?? [:]
                    )
                )
            }
        }
        let created = try security.database.putApplicationPrivileges(records)
        var response = JSONObject()
        for (record, wasCreated) in zip(records, created) {
            var byName = response[record.application]?.objectValue ?? [:]
            byName[record.name] = ["created": .bool(wasCreated)]
            response[record.application] = .object(byName)
        }
        return ESResponse(json: .object(response))
    }

    func getApplicationPrivileges(
        _ request: ESRequest,
        _ application: String?,
        _ names: String?
    ) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let wanted = names.map { Set($0.split(separator: ",").map(String.init)) }
        var response = JSONObject()
        for record in try security.database.applicationPrivileges()
        where (application.map { Wildcard.matches($0, record.application) } ?? true)
            && (wanted?.contains(record.name) ?? true)
        {
            var byName = response[record.application]?.objectValue ?? [:]
            byName[record.name] = [
                "application": .string(record.application),
                "name": .string(record.name),
                "actions": .array(record.actions.map { .string($0) }),
                "metadata": .object(record.metadata),
            ]
            response[record.application] = .object(byName)
        }
        return ESResponse(status: application != nil && response.isEmpty ? 404 : 200, json: .object(response))
    }

    func deleteApplicationPrivileges(
        _ request: ESRequest,
        _ application: String,
        _ names: String
    ) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        var byName = JSONObject()
        var anyFound = false
        for name in names.split(separator: ",").map(String.init) {
            let found = try security.database.deleteApplicationPrivilege(application: application, name: name)
            anyFound = anyFound || found
            byName[name] = ["found": .bool(found)]
        }
        return ESResponse(status: anyFound ? 200 : 404, json: [application: .object(byName)])
    }

    // MARK: Privilege checks

    func hasPrivileges(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let caller = request.authentication
        let body = try request.requiredObject()
        var all = true
        var cluster = JSONObject()
        for privilege in body["cluster"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            _ = try Privileges.clusterDefinition(privilege)
            let held = caller.layers.allSatisfy { $0.holdsCluster(privilege) }
            all = all && held
            cluster[privilege] = .bool(held)
        }
        var indices = JSONObject()
        for entry in body["index"]?.arrayValue ?? [] {
            let names =
                entry["names"]?.arrayValue?.compactMap(\.stringValue) ?? entry["names"]?.stringValue.map { [$0] } ?? []
            let privileges = entry["privileges"]?.arrayValue?.compactMap(\.stringValue) ?? []
            for privilege in privileges { _ = try Privileges.indexDefinition(privilege) }
            for name in names {
                var held = indices[name]?.objectValue ?? [:]
                for privilege in privileges {
                    let holds = caller.layers.allSatisfy { $0.holdsIndex(privilege, on: name) }
                    all = all && holds
                    held[privilege] = .bool(holds)
                }
                indices[name] = .object(held)
            }
        }
        var applications = JSONObject()
        let defined = try security.database.applicationPrivileges()
        for entry in body["application"]?.arrayValue ?? [] {
            guard let application = entry["application"]?.stringValue else { continue }
            let privileges = entry["privileges"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var byResource = applications[application]?.objectValue ?? [:]
            for resource in entry["resources"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                var held = byResource[resource]?.objectValue ?? [:]
                for privilege in privileges {
                    let holds = caller.layers.allSatisfy {
                        $0.holdsApplication(privilege, application: application, resource: resource, defined: defined)
                    }
                    all = all && holds
                    held[privilege] = .bool(holds)
                }
                byResource[resource] = .object(held)
            }
            applications[application] = .object(byResource)
        }
        return ESResponse(json: [
            "username": .string(caller.username),
            "has_all_requested": .bool(all),
            "cluster": .object(cluster),
            "index": .object(indices),
            "application": .object(applications),
        ])
    }

    // MARK: Tokens

    /// `POST /_security/oauth2/token` with the `password`, `client_credentials` or `refresh_token` grant.
    func createToken(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let body = try request.requiredObject()
        var response: JSONObject
        let owner: Authentication
        switch body["grant_type"]?.stringValue {
        case "password":
            guard let username = body["username"]?.stringValue, let password = body["password"]?.stringValue else {
                throw .validation("username and password are required with grant_type [password]")
            }
            owner = try security.authenticate(
                username: username,
                password: password,
                remoteAddress: request.remoteAddress,
                path: "/_security/oauth2/token"
            )
            response = try security.issueToken(for: owner.username, withRefresh: true)
        case "client_credentials":
            guard request.authentication.kind == .realm else {
                throw .illegalArgument("tokens are issued with client_credentials to users of a realm only")
            }
            owner = request.authentication
            response = try security.issueToken(for: owner.username, withRefresh: false)
        case "refresh_token":
            guard let token = body["refresh_token"]?.stringValue else { throw .validation("refresh_token is missing") }
            let refreshed = try security.refreshToken(token)
            owner = try security.authentication(ofUser: refreshed.username)
            response = refreshed.body
        default:
            throw .validation("grant_type must be one of [password, client_credentials, refresh_token]")
        }
        response["authentication"] = owner.json
        return ESResponse(json: .object(response))
    }

    /// `DELETE /_security/oauth2/token` by `token`, `refresh_token` or `username`.
    func invalidateTokens(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let security = try enabledSecurity()
        let body = try request.requiredObject()
        let outcome: (Int, Int)
        if let token = body["token"]?.stringValue ?? body["refresh_token"]?.stringValue {
            outcome = try security.database.invalidateTokens(
                hashes: [ElasticsearchSecurity.tokenHash(token)],
                username: nil,
                at: ElasticsearchSecurity.nowMilliseconds()
            )
        } else if let username = body["username"]?.stringValue {
            outcome = try security.database.invalidateTokens(
                hashes: [],
                username: username,
                at: ElasticsearchSecurity.nowMilliseconds()
            )
        } else {
            throw .validation("one of [token], [refresh_token] or [username] must be specified")
        }
        return ESResponse(json: [
            "invalidated_tokens": .int(Int64(outcome.0)),
            "previously_invalidated_tokens": .int(Int64(outcome.1)),
            "error_count": 0,
        ])
    }

    func clearSecurityCache() throws(StoreError) -> ESResponse {
        try enabledSecurity().clearCache()
        return ESResponse(json: [
            "_nodes": ["total": 1, "successful": 1, "failed": 0],
            "cluster_name": .string(store.configuration.clusterName),
            "nodes": [store.clusterUUID: ["name": .string(store.configuration.nodeName)]],
        ])
    }
}

extension Permission {
    /// Whether an application privilege (a name, or an action such as `data:read/*`) is held on a resource: some
    /// grant of the application covers the resource and has the privilege itself, `*`, or privileges whose actions
    /// cover the requested one's.
    func holdsApplication(
        _ privilege: String,
        application: String,
        resource: String,
        defined: [ApplicationPrivilegeRecord]
    ) -> Bool {
        func actions(of name: String) -> [String] {
            if name.contains("/") || name.contains(":") || name == "*" { return [name] }
            return defined.first { $0.application == application && $0.name == name }?.actions ?? []
        }
        let requested = actions(of: privilege)
        return applications.contains { grant in
            guard Wildcard.matches(grant.application, application),
                grant.resources.contains(where: { Wildcard.matches($0, resource) })
            else { return false }
            if grant.privileges.contains(privilege) || grant.privileges.contains("*") { return true }
            let granted = grant.privileges.flatMap(actions(of:))
            return !requested.isEmpty
                && requested.allSatisfy { action in granted.contains { Wildcard.matches($0, action) } }
        }
    }
}
