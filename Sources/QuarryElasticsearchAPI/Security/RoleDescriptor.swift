import Foundation
public import QuarryCore
public import QuarrySearch

/// A role as Elasticsearch's role APIs and API keys' `role_descriptors` write it: cluster privileges, index
/// privileges per index pattern, application privileges, `run_as` and metadata.
public struct RoleDescriptor: Sendable, Equatable {
    public struct IndexGrant: Sendable, Equatable {
        /// Index names or patterns (`*`, `?`, or a `/regular expression/`).
        public var names: [String]
        public var privileges: [String]
        public var allowRestrictedIndices: Bool
    }

    public struct ApplicationGrant: Sendable, Equatable {
        public var application: String
        public var privileges: [String]
        public var resources: [String]
    }

    public var cluster: [String]
    public var indices: [IndexGrant]
    public var applications: [ApplicationGrant]
    public var runAs: [String]
    public var metadata: JSONObject
    public var description: String?

    public init(
        cluster: [String] = [],
        indices: [IndexGrant] = [],
        applications: [ApplicationGrant] = [],
        runAs: [String] = [],
        metadata: JSONObject = [:],
        description: String? = nil
    ) {
        self.cluster = cluster
        self.indices = indices
        self.applications = applications
        self.runAs = runAs
        self.metadata = metadata
        self.description = description
    }

    /// Reads a descriptor from a role API body or an API key's `role_descriptors` entry, checking every privilege
    /// name as Elasticsearch does.
    /// - Throws: ``StoreError`` with Elasticsearch's wording for unknown fields and privileges. Field and document
    ///   level security (`field_security`, `query`) is refused: Quarry cannot enforce it, and a role that looked
    ///   restricted but was not would be worse than an error.
    public init(parsing json: JSON, role name: String) throws(StoreError) {
        try self.init(json, role: name, stored: false)
    }

    /// Reads a descriptor this process wrote (its metadata may hold reserved `_` keys, as built-in roles' do).
    init(stored json: JSON, role name: String) throws(StoreError) {
        try self.init(json, role: name, stored: true)
    }

    private init(_ json: JSON, role name: String, stored: Bool) throws(StoreError) {
        guard case .object(let object) = json else {
            throw StoreError(
                type: "parse_exception",
                reason: "failed to parse role [\(name)]. expected an object but found [\(json.tokenName)] instead",
                status: 400
            )
        }
        self.init()
        for (key, value) in object {
            switch key {
            case "cluster":
                cluster = try Self.strings(value, field: key, role: name)
                for privilege in cluster { _ = try Privileges.clusterDefinition(privilege) }
            case "indices", "index":
                guard case .array(let items) = value else { throw Self.unexpected(key, role: name) }
                for item in items { indices.append(try Self.indexGrant(item, role: name)) }
            case "applications":
                guard case .array(let items) = value else { throw Self.unexpected(key, role: name) }
                for item in items { applications.append(try Self.applicationGrant(item, role: name)) }
            case "run_as":
                runAs = try Self.strings(value, field: key, role: name)
            case "metadata":
                guard case .object(let metadata) = value else { throw Self.unexpected(key, role: name) }
                if !stored, let reserved = metadata.keys.first(where: { $0.hasPrefix("_") }) {
                    throw StoreError(
                        type: "action_request_validation_exception",
                        reason: "Validation Failed: 1: role metadata keys may not start with [_] ([\(reserved)]);",
                        status: 400
                    )
                }
                self.metadata = metadata
            case "description":
                description = value.stringValue
            case "transient_metadata", "remote_indices", "remote_cluster", "restriction":
                if key == "remote_indices" || key == "remote_cluster", value.arrayValue?.isEmpty == false {
                    throw .illegalArgument("remote indices and clusters are not supported: Quarry has one cluster")
                }
            default:
                throw Self.unexpected(key, role: name)
            }
        }
    }

    private static func unexpected(_ field: String, role: String) -> StoreError {
        StoreError(
            type: "parse_exception",
            reason: "failed to parse role [\(role)]. unexpected field [\(field)]",
            status: 400
        )
    }

    private static func strings(_ value: JSON, field: String, role: String) throws(StoreError) -> [String] {
        switch value {
        case .string(let text): return [text]
        case .array(let items):
            var strings: [String] = []
            for item in items {
                guard let text = item.stringValue else { throw unexpected(field, role: role) }
                strings.append(text)
            }
            return strings
        default: throw unexpected(field, role: role)
        }
    }

    private static func indexGrant(_ json: JSON, role: String) throws(StoreError) -> IndexGrant {
        guard case .object(let object) = json else { throw unexpected("indices", role: role) }
        var grant = IndexGrant(names: [], privileges: [], allowRestrictedIndices: false)
        for (key, value) in object {
            switch key {
            case "names": grant.names = try strings(value, field: key, role: role)
            case "privileges": grant.privileges = try strings(value, field: key, role: role)
            case "allow_restricted_indices": grant.allowRestrictedIndices = value.boolValue ?? false
            case "field_security", "query":
                throw .illegalArgument(
                    "failed to parse indices privileges for role [\(role)]: field and document level security "
                        + "([\(key)]) is not supported by Quarry"
                )
            default:
                throw StoreError(
                    type: "parse_exception",
                    reason: "failed to parse indices privileges for role [\(role)]. unexpected field [\(key)]",
                    status: 400
                )
            }
        }
        if grant.names.isEmpty {
            throw StoreError(
                type: "parse_exception",
                reason: "failed to parse indices privileges for role [\(role)]. missing required [names] field",
                status: 400
            )
        }
        if grant.privileges.isEmpty {
            throw StoreError(
                type: "parse_exception",
                reason: "failed to parse indices privileges for role [\(role)]. missing required [privileges] field",
                status: 400
            )
        }
        for privilege in grant.privileges { _ = try Privileges.indexDefinition(privilege) }
        return grant
    }

    private static func applicationGrant(_ json: JSON, role: String) throws(StoreError) -> ApplicationGrant {
        guard case .object(let object) = json else { throw unexpected("applications", role: role) }
        var grant = ApplicationGrant(application: "", privileges: [], resources: [])
        for (key, value) in object {
            switch key {
            case "application": grant.application = value.stringValue ?? ""
            case "privileges": grant.privileges = try strings(value, field: key, role: role)
            case "resources": grant.resources = try strings(value, field: key, role: role)
            default:
                throw StoreError(
                    type: "parse_exception",
                    reason: "failed to parse application privileges for role [\(role)]. unexpected field [\(key)]",
                    status: 400
                )
            }
        }
        if grant.application.isEmpty || grant.privileges.isEmpty || grant.resources.isEmpty {
            throw StoreError(
                type: "parse_exception",
                reason: "failed to parse application privileges for role [\(role)]. [application], [privileges] "
                    + "and [resources] are required",
                status: 400
            )
        }
        return grant
    }

    /// The descriptor as the role and API key APIs return it.
    public var json: JSON {
        var object: JSONObject = [
            "cluster": .array(cluster.map { .string($0) }),
            "indices": .array(
                indices.map { grant in
                    [
                        "names": .array(grant.names.map { .string($0) }),
                        "privileges": .array(grant.privileges.map { .string($0) }),
                        "allow_restricted_indices": .bool(grant.allowRestrictedIndices),
                    ]
                }
            ),
            "applications": .array(
                applications.map { grant in
                    [
                        "application": .string(grant.application),
                        "privileges": .array(grant.privileges.map { .string($0) }),
                        "resources": .array(grant.resources.map { .string($0) }),
                    ]
                }
            ),
            "run_as": .array(runAs.map { .string($0) }),
            "metadata": .object(metadata),
            "transient_metadata": ["enabled": true],
        ]
        if let description { object["description"] = .string(description) }
        return .object(object)
    }

    /// Whether the descriptor grants nothing at all (an API key created with it has no privileges).
    var isEmpty: Bool { cluster.isEmpty && indices.isEmpty && applications.isEmpty && runAs.isEmpty }

    // MARK: Built-in roles

    /// The reserved roles, as Elasticsearch ships them, narrowed to what Quarry serves. They cannot be changed or
    /// deleted. `editor` may also create indices and write documents on every index: Quarry has no solution indices to
    /// limit its writes to, and a hunt team's editor loads captures.
    public static let builtIn: [String: RoleDescriptor] = [
        "superuser": RoleDescriptor(
            cluster: ["all"],
            indices: [IndexGrant(names: ["*"], privileges: ["all"], allowRestrictedIndices: true)],
            applications: [ApplicationGrant(application: "*", privileges: ["*"], resources: ["*"])],
            runAs: ["*"],
            metadata: ["_reserved": true],
            description: "Grants full access to cluster management and data indices."
        ),
        // Quarry's web application reads its roles from the same users: admin (everything) and analyst (runs hunts,
        // reads every index), beside viewer.
        "admin": RoleDescriptor(
            cluster: ["all"],
            indices: [IndexGrant(names: ["*"], privileges: ["all"], allowRestrictedIndices: false)],
            metadata: ["_reserved": true],
            description: "Quarry: everything in the web application; all indices and the cluster on the API."
        ),
        "analyst": RoleDescriptor(
            cluster: ["monitor"],
            indices: [
                IndexGrant(names: ["*"], privileges: ["read", "view_index_metadata"], allowRestrictedIndices: false)
            ],
            metadata: ["_reserved": true],
            description: "Quarry: runs hunts and reads runs in the web application; reads all indices on the API."
        ),
        "viewer": RoleDescriptor(
            indices: [
                IndexGrant(names: ["*"], privileges: ["read", "view_index_metadata"], allowRestrictedIndices: false)
            ],
            metadata: ["_reserved": true],
            description: "Grants read-only access to all indices."
        ),
        "editor": RoleDescriptor(
            indices: [
                IndexGrant(
                    names: ["*"],
                    privileges: ["read", "view_index_metadata", "write", "create_index"],
                    allowRestrictedIndices: false
                )
            ],
            metadata: ["_reserved": true],
            description: "Grants read and write access to all indices."
        ),
        "monitoring_user": RoleDescriptor(
            cluster: ["monitor"],
            indices: [IndexGrant(names: ["*"], privileges: ["monitor"], allowRestrictedIndices: false)],
            metadata: ["_reserved": true],
            description: "Grants the minimum privileges required to monitor the cluster."
        ),
        "beats_writer": RoleDescriptor(
            cluster: ["monitor", "manage_index_templates", "read_ilm"],
            indices: [
                IndexGrant(
                    names: ["packetbeat-*", "filebeat-*", "metricbeat-*", "auditbeat-*", "winlogbeat-*"],
                    privileges: ["create_doc", "view_index_metadata", "auto_configure"],
                    allowRestrictedIndices: false
                )
            ],
            metadata: ["_reserved": true],
            description: "Grants a Beat what it needs to install its template and ship events."
        ),
    ]
}

/// Compiled privileges: what one set of role descriptors allows. An authenticated caller has one or more layers
/// (an API key: its own descriptors and its owner's), and an action is allowed only when every layer allows it.
struct Permission: Sendable {
    struct IndexRule: Sendable {
        var names: [IndexNamePattern]
        var privileges: [Privileges.Definition]

        func matches(_ name: String) -> Bool { names.contains { $0.matches(name) } }
    }

    var cluster: [Privileges.Definition]
    var indices: [IndexRule]
    var applications: [RoleDescriptor.ApplicationGrant]
    /// Whether API key actions are granted only on the caller's own keys (`manage_own_api_key` without
    /// `manage_api_key`).
    var ownAPIKeysOnly: Bool

    init(_ descriptors: [RoleDescriptor]) {
        var cluster: [Privileges.Definition] = []
        var indices: [IndexRule] = []
        var applications: [RoleDescriptor.ApplicationGrant] = []
        for descriptor in descriptors {
            cluster += descriptor.cluster.compactMap { try? Privileges.clusterDefinition($0) }
            for grant in descriptor.indices {
                indices.append(
                    IndexRule(
                        names: grant.names.map(IndexNamePattern.init),
                        privileges: grant.privileges.compactMap { try? Privileges.indexDefinition($0) }
                    )
                )
            }
            applications += descriptor.applications
        }
        self.cluster = cluster
        self.indices = indices
        self.applications = applications
        let fullKeyManagement = cluster.contains { $0.name != "manage_own_api_key" && $0.grants(Action.getAPIKey) }
        ownAPIKeysOnly = !fullKeyManagement && cluster.contains { $0.name == "manage_own_api_key" }
    }

    func allowsCluster(_ action: String) -> Bool {
        cluster.contains { $0.grants(action) }
    }

    func allowsIndex(_ action: String, on name: String) -> Bool {
        indices.contains { rule in rule.matches(name) && rule.privileges.contains { $0.grants(action) } }
    }

    /// Whether `action` is allowed on every index name (a rule for `*`): the fast path that leaves an index
    /// expression as it is.
    func allowsEveryIndex(_ action: String) -> Bool {
        indices.contains { rule in
            rule.names.contains(where: \.isEverything) && rule.privileges.contains { $0.grants(action) }
        }
    }

    /// Whether a cluster privilege (a name or an action pattern) is held in full.
    func holdsCluster(_ privilege: String) -> Bool {
        guard let requested = try? Privileges.clusterDefinition(privilege) else { return false }
        return requested.patterns.allSatisfy { pattern in cluster.contains { Privileges.covers($0, pattern) } }
    }

    /// Whether an index privilege is held in full on a name or pattern.
    func holdsIndex(_ privilege: String, on name: String) -> Bool {
        guard let requested = try? Privileges.indexDefinition(privilege) else { return false }
        let rules = indices.filter { rule in rule.names.contains { $0.covers(name) } }
        return requested.patterns.allSatisfy { pattern in
            rules.contains { rule in rule.privileges.contains { Privileges.covers($0, pattern) } }
        }
    }
}

/// An index name pattern of a role: a name, a wildcard pattern (`packetbeat-*`), or a Lucene-style regular
/// expression between slashes (`/logs-[0-9]+/`, read with Foundation's regular expressions, anchored).
struct IndexNamePattern: Sendable {
    let text: String
    private let regex: RegexBox?

    init(_ text: String) {
        self.text = text
        if text.count > 2, text.hasPrefix("/"), text.hasSuffix("/") {
            regex = RegexBox(String(text.dropFirst().dropLast()))
        } else {
            regex = nil
        }
    }

    var isEverything: Bool { text == "*" }

    func matches(_ name: String) -> Bool {
        if let regex { return regex.matches(name) }
        return Wildcard.matches(text, name)
    }

    /// Whether every name `requested` (itself possibly a pattern) stands for is matched: its wildcards are read as
    /// literals.
    func covers(_ requested: String) -> Bool {
        if let regex { return regex.matches(requested) }
        return Wildcard.matches(text, requested)
    }
}

/// A compiled, anchored regular expression that can cross concurrency domains (`NSRegularExpression` is immutable
/// and thread-safe once built).
final class RegexBox: @unchecked Sendable {
    private let expression: NSRegularExpression?

    init(_ pattern: String) {
        expression = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$")
    }

    func matches(_ text: String) -> Bool {
        guard let expression else { return false }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
