import QuarryCore
import QuarrySearch

/// Elasticsearch's named privileges and the actions each grants. An action is a name such as
/// `indices:data/read/search`; a privilege grants the actions matching its patterns (`*` is any run), minus its
/// exclusions. The tables follow Elasticsearch 8's `ClusterPrivilegeResolver` and `IndexPrivilege`, limited to the
/// actions Quarry serves; names Elasticsearch knows whose actions Quarry does not serve are accepted (a role written
/// for Elasticsearch loads unchanged) and grant nothing here.
enum Privileges {
    struct Definition: Sendable {
        var name: String
        var patterns: [String]
        var excluded: [String] = []

        func grants(_ action: String) -> Bool {
            patterns.contains { Wildcard.matches($0, action) } && !excluded.contains { Wildcard.matches($0, action) }
        }
    }

    static let templateActions = ["indices:admin/template/*", "indices:admin/index_template/*"]
    static let securityActions = "cluster:admin/xpack/security/*"
    static let apiKeyActions = "cluster:admin/xpack/security/api_key/*"

    /// Cluster privileges, narrowest first: the order of "granted by the cluster privileges [...]" in a 403.
    static let cluster: [Definition] = [
        Definition(name: "manage_own_api_key", patterns: [apiKeyActions]),
        Definition(name: "grant_api_key", patterns: ["cluster:admin/xpack/security/api_key/grant"]),
        Definition(name: "manage_api_key", patterns: [apiKeyActions]),
        Definition(
            name: "read_security",
            patterns: [
                "cluster:admin/xpack/security/*/get", "cluster:admin/xpack/security/*/query",
                "cluster:admin/xpack/security/api_key/get", "cluster:admin/xpack/security/api_key/query",
            ]
        ),
        Definition(name: "manage_token", patterns: ["cluster:admin/xpack/security/token/*"]),
        Definition(name: "manage_security", patterns: [securityActions]),
        Definition(name: "manage_index_templates", patterns: templateActions),
        Definition(name: "monitor", patterns: ["cluster:monitor/*"]),
        Definition(name: "manage", patterns: ["cluster:*"] + templateActions, excluded: [securityActions]),
        Definition(name: "all", patterns: ["cluster:*"] + templateActions),
    ]

    /// Cluster privilege names Elasticsearch has that grant no action Quarry serves.
    static let otherClusterNames: Set<String> = [
        "none", "cancel_task", "create_snapshot", "cross_cluster_replication", "cross_cluster_search",
        "delegate_pki", "manage_autoscaling", "manage_behavioral_analytics", "manage_ccr", "manage_connector",
        "manage_data_frame_transforms", "manage_data_stream_global_retention", "manage_enrich", "manage_ilm",
        "manage_inference", "manage_ingest_pipelines", "manage_logstash_pipelines", "manage_ml", "manage_oidc",
        "manage_pipeline", "manage_rollup", "manage_saml", "manage_search_application", "manage_search_query_rules",
        "manage_search_synonyms", "manage_service_account", "manage_slm", "manage_transform", "manage_user_profile",
        "manage_watcher", "monitor_connector", "monitor_data_frame_transforms", "monitor_data_stream_global_retention",
        "monitor_enrich", "monitor_esql", "monitor_inference", "monitor_ml", "monitor_rollup", "monitor_snapshot",
        "monitor_stats", "monitor_text_structure", "monitor_transform", "monitor_watcher", "post_behavioral_event",
        "read_ccr", "read_connector_secrets", "read_fleet_secrets", "read_ilm", "read_pipeline", "read_slm",
        "transport_client", "write_connector_secrets", "write_fleet_secrets",
    ]

    /// Index privileges, narrowest first.
    static let index: [Definition] = [
        Definition(
            name: "create_doc",
            patterns: ["indices:data/write/index:op_type/create", "indices:data/write/bulk*", autoPutMapping]
        ),
        Definition(
            name: "create",
            patterns: ["indices:data/write/index*", "indices:data/write/bulk*", autoPutMapping]
        ),
        Definition(
            name: "index",
            patterns: [
                "indices:data/write/index*", "indices:data/write/update*", "indices:data/write/bulk*", autoPutMapping,
            ]
        ),
        Definition(name: "delete", patterns: ["indices:data/write/delete*", "indices:data/write/bulk*"]),
        Definition(name: "write", patterns: ["indices:data/write/*", autoPutMapping]),
        Definition(name: "read", patterns: ["indices:data/read/*", "indices:admin/resolve/index"]),
        Definition(
            name: "view_index_metadata",
            patterns: [
                "indices:admin/aliases/get", "indices:admin/get", "indices:admin/mappings/get",
                "indices:admin/mappings/fields/get*", "indices:monitor/settings/get", "indices:admin/resolve/index",
                "indices:admin/validate/query*",
            ]
        ),
        Definition(name: "monitor", patterns: ["indices:monitor/*"]),
        Definition(
            name: "maintenance",
            patterns: ["indices:admin/refresh*", "indices:admin/flush*", "indices:admin/forcemerge*"]
        ),
        Definition(
            name: "auto_configure",
            patterns: ["indices:admin/auto_create", autoPutMapping, "indices:admin/data_stream/create"]
        ),
        Definition(
            name: "create_index",
            patterns: ["indices:admin/create", "indices:admin/auto_create", "indices:admin/data_stream/create"]
        ),
        Definition(name: "delete_index", patterns: ["indices:admin/delete*", "indices:admin/data_stream/delete*"]),
        Definition(name: "manage", patterns: ["indices:monitor/*", "indices:admin/*"]),
        Definition(name: "all", patterns: ["indices:*"]),
    ]

    static let autoPutMapping = "indices:admin/mapping/auto_put"

    /// Index privilege names Elasticsearch has that grant no action Quarry serves.
    static let otherIndexNames: Set<String> = [
        "none", "cross_cluster_replication", "cross_cluster_replication_internal", "manage_data_stream_lifecycle",
        "manage_failure_store", "manage_follow_index", "manage_ilm", "manage_leader_index", "read_cross_cluster",
        "read_failure_store",
    ]

    /// The patterns a cluster privilege stands for: a predefined name, or an action pattern (`cluster:monitor/*`).
    /// - Throws: Elasticsearch's error for an unknown name.
    static func clusterDefinition(_ name: String) throws(StoreError) -> Definition {
        if let definition = cluster.first(where: { $0.name == name }) { return definition }
        if otherClusterNames.contains(name) { return Definition(name: name, patterns: []) }
        if name.hasPrefix("cluster:") || name.hasPrefix("indices:admin/template")
            || name.hasPrefix("indices:admin/index_template")
        {
            return Definition(name: name, patterns: [name])
        }
        let names = (cluster.map(\.name) + otherClusterNames).sorted().joined(separator: ",")
        throw .illegalArgument(
            "unknown cluster privilege [\(name)]. a privilege must be either one of the predefined cluster privilege "
                + "names [\(names)] or a pattern over one of the available cluster actions"
        )
    }

    /// The patterns an index privilege stands for: a predefined name, or an action pattern (`indices:data/read/*`).
    static func indexDefinition(_ name: String) throws(StoreError) -> Definition {
        if let definition = index.first(where: { $0.name == name }) { return definition }
        if otherIndexNames.contains(name) { return Definition(name: name, patterns: []) }
        if name.hasPrefix("indices:") { return Definition(name: name, patterns: [name]) }
        let names = (index.map(\.name) + otherIndexNames).sorted().joined(separator: ",")
        throw .illegalArgument(
            "unknown index privilege [\(name)]. a privilege must be either one of the predefined fixed indices "
                + "privileges [\(names)] or a pattern over one of the available index actions"
        )
    }

    /// The names of the privileges that grant `action`, as a 403 lists them.
    static func granting(_ action: String, in definitions: [Definition]) -> [String] {
        definitions.filter { $0.grants(action) }.map(\.name)
    }

    /// Whether a grant pattern covers every action a requested pattern stands for. A requested pattern's `*` is read
    /// as a literal, so `indices:data/read/*` covers `indices:data/read/*` and `indices:*` does too, but
    /// `indices:data/read/search` does not.
    static func covers(_ grant: Definition, _ requested: String) -> Bool {
        grant.patterns.contains { Wildcard.matches($0, requested) }
            && !grant.excluded.contains { Wildcard.matches($0, requested) || Wildcard.matches(requested, $0) }
    }
}

/// The action names of the endpoints Quarry serves, as Elasticsearch names them (they appear in 403 errors and are
/// what privileges grant).
enum Action {
    static let main = "cluster:monitor/main"
    static let health = "cluster:monitor/health"
    static let getSettings = "cluster:monitor/settings"
    static let updateSettings = "cluster:admin/settings/update"
    static let putTemplate = "indices:admin/index_template/put"
    static let getTemplate = "indices:admin/index_template/get"
    static let deleteTemplate = "indices:admin/index_template/delete"
    static let search = "indices:data/read/search"
    static let openPointInTime = "indices:data/read/open_point_in_time"
    static let fieldCaps = "indices:data/read/field_caps"
    static let deleteByQuery = "indices:data/write/delete/byquery"
    static let updateByQuery = "indices:data/write/update/byquery"
    static let rethrottle = "cluster:admin/reindex/rethrottle"
    static let get = "indices:data/read/get"
    static let multiGet = "indices:data/read/mget"
    static let indexDocument = "indices:data/write/index:op_type/index"
    static let createDocument = "indices:data/write/index:op_type/create"
    static let update = "indices:data/write/update"
    static let delete = "indices:data/write/delete"
    static let bulk = "indices:data/write/bulk"
    static let autoCreate = "indices:admin/auto_create"
    static let refresh = "indices:admin/refresh"
    static let flush = "indices:admin/flush"
    static let forceMerge = "indices:admin/forcemerge"
    static let segments = "indices:monitor/segments"
    static let getMapping = "indices:admin/mappings/get"
    static let putMapping = "indices:admin/mapping/put"
    static let getIndexSettings = "indices:monitor/settings/get"
    static let updateIndexSettings = "indices:admin/settings/update"
    static let getAliases = "indices:admin/aliases/get"
    static let aliases = "indices:admin/aliases"
    static let resolveIndex = "indices:admin/resolve/index"
    static let createIndex = "indices:admin/create"
    static let getIndex = "indices:admin/get"
    static let deleteIndex = "indices:admin/delete"

    static let authenticate = "cluster:admin/xpack/security/user/authenticate"
    static let hasPrivileges = "cluster:admin/xpack/security/user/has_privileges"
    static let putUser = "cluster:admin/xpack/security/user/put"
    static let getUser = "cluster:admin/xpack/security/user/get"
    static let deleteUser = "cluster:admin/xpack/security/user/delete"
    static let changePassword = "cluster:admin/xpack/security/user/change_password"
    static let setEnabled = "cluster:admin/xpack/security/user/set_enabled"
    static let putRole = "cluster:admin/xpack/security/role/put"
    static let getRole = "cluster:admin/xpack/security/role/get"
    static let deleteRole = "cluster:admin/xpack/security/role/delete"
    static let putPrivileges = "cluster:admin/xpack/security/privilege/put"
    static let getPrivileges = "cluster:admin/xpack/security/privilege/get"
    static let deletePrivileges = "cluster:admin/xpack/security/privilege/delete"
    static let createAPIKey = "cluster:admin/xpack/security/api_key/create"
    static let grantAPIKey = "cluster:admin/xpack/security/api_key/grant"
    static let getAPIKey = "cluster:admin/xpack/security/api_key/get"
    static let queryAPIKey = "cluster:admin/xpack/security/api_key/query"
    static let invalidateAPIKey = "cluster:admin/xpack/security/api_key/invalidate"
    static let updateAPIKey = "cluster:admin/xpack/security/api_key/update"
    static let clearAPIKeyCache = "cluster:admin/xpack/security/api_key/clear_cache"
    static let clearRealmCache = "cluster:admin/xpack/security/realm/cache/clear"
    static let createToken = "cluster:admin/xpack/security/token/create"
    static let invalidateToken = "cluster:admin/xpack/security/token/invalidate"
}
