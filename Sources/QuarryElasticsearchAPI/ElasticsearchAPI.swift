import QuarryCore
public import QuarrySearch

/// The Elasticsearch REST API over the embedded store: routing of ES's paths to handlers, ES's parameters that
/// apply everywhere (`pretty`, `filter_path`, `error_trace`, `human`), and ES's error shapes.
///
/// Routing is done here rather than with Hummingbird's router because ES's paths put user names (`{index}`) and
/// API names (`_search`) in the same position, with API names winning, and index expressions may contain `*` and
/// `,`.
public struct ElasticsearchAPI: Sendable {
    public let store: EmbeddedStore
    /// Authentication and authorization of every request, or `nil` for in-process use by the process itself (the
    /// CLI, stories' searches), which holds the data directory anyway. Listeners are built with it.
    public let security: ElasticsearchSecurity?
    /// The version reported by `GET /`.
    public static let version = "8.17.0"

    public init(store: EmbeddedStore, security: ElasticsearchSecurity? = nil) {
        self.store = store
        self.security = security
    }

    typealias Handler = @Sendable (ElasticsearchAPI, ESRequest, [String: String]) throws(StoreError) -> ESResponse

    /// What a route needs the caller to be allowed, checked before its handler runs.
    enum RouteAccess: Sendable {
        /// A cluster action.
        case cluster(String)
        /// An index action on the expression in `captures[capture]` (every index when absent), which is replaced by
        /// what the caller may use (``Authentication/authorizeIndices(_:action:store:)``).
        case indices(String, capture: String = "index")
        /// The write of one document to `captures["index"]`, creating the index if needed.
        case document(create: Bool)
        /// Several operations (`_bulk`, `_mget`, `_msearch`, `_aliases`): the handler checks each item.
        case items
        /// Any authenticated caller; the handler checks what depends on the body (the security APIs).
        case authenticated
    }

    struct Route: Sendable {
        var methods: Set<ESRequest.Method>
        var pattern: [String]
        var access: RouteAccess
        var handler: Handler

        /// The captured components when `path` fits this route.
        func match(_ path: [String]) -> [String: String]? {
            guard path.count == pattern.count else { return nil }
            var captures: [String: String] = [:]
            for (component, expected) in zip(path, pattern) {
                if expected.hasPrefix("{") {
                    if expected == "{index}", component.hasPrefix("_"), component != "_all" { return nil }
                    captures[String(expected.dropFirst().dropLast())] = component
                } else if component != expected {
                    return nil
                }
            }
            return captures
        }
    }

    static let routes: [Route] = {
        var routes: [Route] = []
        func add(_ methods: [ESRequest.Method], _ path: String, _ access: RouteAccess, _ handler: @escaping Handler) {
            let pattern = path.split(separator: "/").map(String.init)
            routes.append(Route(methods: Set(methods), pattern: pattern, access: access, handler: handler))
        }
        addSecurityRoutes(add)
        // Cluster and node.
        add([.get], "/", .cluster(Action.main), { api, request, _ throws(StoreError) in api.info(request) })
        add(
            [.head],
            "/",
            .cluster(Action.main),
            { _, _, _ throws(StoreError) in ESResponse(status: 200, body: .empty) }
        )
        add(
            [.get],
            "/_cluster/health",
            .cluster(Action.health),
            { api, request, _ throws(StoreError) in try api.clusterHealth(request, nil) }
        )
        add(
            [.get],
            "/_cluster/settings",
            .cluster(Action.getSettings),
            { api, request, _ throws(StoreError) in try api.getClusterSettings(request) }
        )
        add(
            [.put],
            "/_cluster/settings",
            .cluster(Action.updateSettings),
            { api, request, _ throws(StoreError) in try api.putClusterSettings(request) }
        )
        add(
            [.get],
            "/_cluster/health/{index}",
            .cluster(Action.health),
            { api, request, c throws(StoreError) in try api.clusterHealth(request, c["index"]) }
        )
        add(
            [.get],
            "/_cat/indices",
            .indices(Action.getIndexSettings),
            { api, request, c throws(StoreError) in try api.catIndices(request, c["index"]) }
        )
        add(
            [.get],
            "/_cat/indices/{index}",
            .indices(Action.getIndexSettings),
            { api, request, c throws(StoreError) in try api.catIndices(request, c["index"]) }
        )
        add(
            [.get],
            "/_cat/health",
            .cluster(Action.health),
            { api, request, _ throws(StoreError) in try api.catHealth(request) }
        )
        add(
            [.get],
            "/_cat/count",
            .indices(Action.search),
            { api, request, c throws(StoreError) in try api.catCount(request, c["index"]) }
        )
        add(
            [.get],
            "/_cat/count/{index}",
            .indices(Action.search),
            { api, request, c throws(StoreError) in try api.catCount(request, c["index"]) }
        )
        // Templates.
        add(
            [.put, .post],
            "/_index_template/{name}",
            .cluster(Action.putTemplate),
            { api, request, c throws(StoreError) in try api.putTemplate(request, c["name"]!) }
        )
        add(
            [.get],
            "/_index_template",
            .cluster(Action.getTemplate),
            { api, request, _ throws(StoreError) in try api.getTemplates(request, nil) }
        )
        add(
            [.get],
            "/_index_template/{name}",
            .cluster(Action.getTemplate),
            { api, request, c throws(StoreError) in try api.getTemplates(request, c["name"]) }
        )
        add(
            [.head],
            "/_index_template/{name}",
            .cluster(Action.getTemplate),
            { api, request, c throws(StoreError) in api.templateExists(c["name"]!) }
        )
        add(
            [.delete],
            "/_index_template/{name}",
            .cluster(Action.deleteTemplate),
            { api, request, c throws(StoreError) in try api.deleteTemplate(c["name"]!) }
        )
        // Documents.
        add(
            [.post, .put],
            "/_bulk",
            .items,
            { api, request, _ throws(StoreError) in try api.bulk(request, defaultIndex: nil) }
        )
        add(
            [.post, .put],
            "/{index}/_bulk",
            .items,
            { api, request, c throws(StoreError) in try api.bulk(request, defaultIndex: c["index"]) }
        )
        add(
            [.post],
            "/{index}/_doc",
            .document(create: false),
            { api, request, c throws(StoreError) in try api.indexDocument(request, c["index"]!, id: nil, create: false)
            }
        )
        add(
            [.put, .post],
            "/{index}/_doc/{id}",
            .document(create: false),
            { api, request, c throws(StoreError) in
                try api.indexDocument(request, c["index"]!, id: c["id"], create: false)
            }
        )
        add(
            [.put, .post],
            "/{index}/_create/{id}",
            .document(create: true),
            { api, request, c throws(StoreError) in
                try api.indexDocument(request, c["index"]!, id: c["id"], create: true)
            }
        )
        add(
            [.get],
            "/{index}/_doc/{id}",
            .indices(Action.get),
            { api, request, c throws(StoreError) in
                try api.getDocument(request, c["index"]!, c["id"]!, sourceOnly: false)
            }
        )
        add(
            [.head],
            "/{index}/_doc/{id}",
            .indices(Action.get),
            { api, request, c throws(StoreError) in try api.documentExists(request, c["index"]!, c["id"]!) }
        )
        add(
            [.get],
            "/{index}/_source/{id}",
            .indices(Action.get),
            { api, request, c throws(StoreError) in
                try api.getDocument(request, c["index"]!, c["id"]!, sourceOnly: true)
            }
        )
        add(
            [.head],
            "/{index}/_source/{id}",
            .indices(Action.get),
            { api, request, c throws(StoreError) in try api.documentExists(request, c["index"]!, c["id"]!) }
        )
        add(
            [.delete],
            "/{index}/_doc/{id}",
            .indices(Action.delete),
            { api, request, c throws(StoreError) in try api.deleteDocument(request, c["index"]!, c["id"]!) }
        )
        add(
            [.post],
            "/{index}/_update/{id}",
            .indices(Action.update),
            { api, request, c throws(StoreError) in try api.updateDocument(request, c["index"]!, c["id"]!) }
        )
        // Search.
        add(
            [.get, .post],
            "/_search",
            .indices(Action.search),
            { api, request, c throws(StoreError) in try api.search(request, c["index"]) }
        )
        add(
            [.get, .post],
            "/{index}/_search",
            .indices(Action.search),
            { api, request, c throws(StoreError) in try api.search(request, c["index"]) }
        )
        add(
            [.get, .post],
            "/_search/scroll",
            .authenticated,
            { api, request, _ throws(StoreError) in try api.continueScroll(request, nil) }
        )
        add(
            [.get, .post],
            "/_search/scroll/{scroll_id}",
            .authenticated,
            { api, request, c throws(StoreError) in try api.continueScroll(request, c["scroll_id"]) }
        )
        add(
            [.delete],
            "/_search/scroll",
            .authenticated,
            { api, request, _ throws(StoreError) in try api.clearScroll(request, nil) }
        )
        add(
            [.delete],
            "/_search/scroll/{scroll_id}",
            .authenticated,
            { api, request, c throws(StoreError) in try api.clearScroll(request, c["scroll_id"]) }
        )
        add(
            [.post],
            "/{index}/_pit",
            .indices(Action.openPointInTime),
            { api, request, c throws(StoreError) in try api.openPointInTime(request, c["index"], openSearch: false) }
        )
        add(
            [.delete],
            "/_pit",
            .authenticated,
            { api, request, _ throws(StoreError) in try api.closePointInTime(request, openSearch: false) }
        )
        add(
            [.post],
            "/{index}/_search/point_in_time",
            .indices(Action.openPointInTime),
            { api, request, c throws(StoreError) in try api.openPointInTime(request, c["index"], openSearch: true) }
        )
        add(
            [.delete],
            "/_search/point_in_time",
            .authenticated,
            { api, request, _ throws(StoreError) in try api.closePointInTime(request, openSearch: true) }
        )
        add(
            [.get],
            "/_search/point_in_time/_all",
            .authenticated,
            { api, request, _ throws(StoreError) in api.listPointsInTime(request) }
        )
        add(
            [.delete],
            "/_search/point_in_time/_all",
            .authenticated,
            { api, request, _ throws(StoreError) in try api.closePointInTime(request, openSearch: true, all: true) }
        )
        add(
            [.get, .post],
            "/_field_caps",
            .indices(Action.fieldCaps),
            { api, request, c throws(StoreError) in try api.fieldCapabilities(request, c["index"]) }
        )
        add(
            [.get, .post],
            "/{index}/_field_caps",
            .indices(Action.fieldCaps),
            { api, request, c throws(StoreError) in try api.fieldCapabilities(request, c["index"]) }
        )
        add(
            [.post],
            "/{index}/_delete_by_query",
            .indices(Action.deleteByQuery),
            { api, request, c throws(StoreError) in try api.byQuery(request, c["index"]!, action: .delete) }
        )
        add(
            [.post],
            "/{index}/_update_by_query",
            .indices(Action.updateByQuery),
            { api, request, c throws(StoreError) in try api.byQuery(request, c["index"]!, action: .update) }
        )
        add(
            [.post],
            "/_delete_by_query/{task}/_rethrottle",
            .cluster(Action.rethrottle),
            { api, request, c throws(StoreError) in try api.rethrottle(request, taskID: c["task"]!) }
        )
        add(
            [.post],
            "/_update_by_query/{task}/_rethrottle",
            .cluster(Action.rethrottle),
            { api, request, c throws(StoreError) in try api.rethrottle(request, taskID: c["task"]!) }
        )
        add([.get, .post], "/_mget", .items, { api, request, _ throws(StoreError) in try api.multiGet(request, nil) })
        add(
            [.get, .post],
            "/{index}/_mget",
            .items,
            { api, request, c throws(StoreError) in try api.multiGet(request, c["index"]) }
        )
        add(
            [.get, .post],
            "/_msearch",
            .items,
            { api, request, _ throws(StoreError) in try api.multiSearch(request, nil) }
        )
        add(
            [.get, .post],
            "/{index}/_msearch",
            .items,
            { api, request, c throws(StoreError) in try api.multiSearch(request, c["index"]) }
        )
        add(
            [.get, .post],
            "/_count",
            .indices(Action.search),
            { api, request, c throws(StoreError) in try api.count(request, c["index"]) }
        )
        add(
            [.get, .post],
            "/{index}/_count",
            .indices(Action.search),
            { api, request, c throws(StoreError) in try api.count(request, c["index"]) }
        )
        // Indices.
        add(
            [.post, .get],
            "/_refresh",
            .indices(Action.refresh),
            { api, request, c throws(StoreError) in try api.refresh(request, c["index"]) }
        )
        add(
            [.post, .get],
            "/{index}/_refresh",
            .indices(Action.refresh),
            { api, request, c throws(StoreError) in try api.refresh(request, c["index"]) }
        )
        add(
            [.post, .get],
            "/_flush",
            .indices(Action.flush),
            { api, request, c throws(StoreError) in try api.flush(request, c["index"]) }
        )
        add(
            [.post, .get],
            "/{index}/_flush",
            .indices(Action.flush),
            { api, request, c throws(StoreError) in try api.flush(request, c["index"]) }
        )
        add(
            [.post],
            "/_forcemerge",
            .indices(Action.forceMerge),
            { api, request, c throws(StoreError) in try api.forceMerge(request, c["index"]) }
        )
        add(
            [.post],
            "/{index}/_forcemerge",
            .indices(Action.forceMerge),
            { api, request, c throws(StoreError) in try api.forceMerge(request, c["index"]) }
        )
        add(
            [.get],
            "/_cat/segments",
            .indices(Action.segments),
            { api, request, c throws(StoreError) in try api.catSegments(request, c["index"]) }
        )
        add(
            [.get],
            "/_cat/segments/{index}",
            .indices(Action.segments),
            { api, request, c throws(StoreError) in try api.catSegments(request, c["index"]) }
        )
        add(
            [.get],
            "/_mapping",
            .indices(Action.getMapping),
            { api, request, c throws(StoreError) in try api.getMapping(request, c["index"]) }
        )
        add(
            [.get],
            "/{index}/_mapping",
            .indices(Action.getMapping),
            { api, request, c throws(StoreError) in try api.getMapping(request, c["index"]) }
        )
        add(
            [.put, .post],
            "/{index}/_mapping",
            .indices(Action.putMapping),
            { api, request, c throws(StoreError) in try api.putMapping(request, c["index"]!) }
        )
        add(
            [.get],
            "/_settings",
            .indices(Action.getIndexSettings),
            { api, request, c throws(StoreError) in try api.getSettings(request, c["index"]) }
        )
        add(
            [.get],
            "/{index}/_settings",
            .indices(Action.getIndexSettings),
            { api, request, c throws(StoreError) in try api.getSettings(request, c["index"]) }
        )
        add(
            [.put],
            "/{index}/_settings",
            .indices(Action.updateIndexSettings),
            { api, request, c throws(StoreError) in try api.putSettings(request, c["index"]!) }
        )
        add(
            [.get],
            "/_alias",
            .indices(Action.getAliases),
            { api, request, c throws(StoreError) in try api.getAliases(request, indices: c["index"], names: nil) }
        )
        add(
            [.get],
            "/_alias/{name}",
            .indices(Action.getAliases),
            { api, request, c throws(StoreError) in try api.getAliases(request, indices: c["index"], names: c["name"]) }
        )
        add(
            [.head],
            "/_alias/{name}",
            .indices(Action.getAliases),
            { api, request, c throws(StoreError) in api.aliasExists(request, indices: c["index"], names: c["name"]!) }
        )
        add(
            [.get],
            "/{index}/_alias",
            .indices(Action.getAliases),
            { api, request, c throws(StoreError) in try api.getAliases(request, indices: c["index"], names: nil) }
        )
        add(
            [.get],
            "/{index}/_alias/{name}",
            .indices(Action.getAliases),
            { api, request, c throws(StoreError) in try api.getAliases(request, indices: c["index"], names: c["name"]) }
        )
        add(
            [.head],
            "/{index}/_alias/{name}",
            .indices(Action.getAliases),
            { api, request, c throws(StoreError) in api.aliasExists(request, indices: c["index"], names: c["name"]!) }
        )
        for path in ["/{index}/_alias/{name}", "/{index}/_aliases/{name}"] {
            add(
                [.put, .post],
                path,
                .indices(Action.aliases),
                { api, request, c throws(StoreError) in try api.putAlias(request, c["index"]!, c["name"]!) }
            )
            add(
                [.delete],
                path,
                .indices(Action.aliases),
                { api, request, c throws(StoreError) in try api.deleteAlias(request, c["index"]!, c["name"]!) }
            )
        }
        add([.post], "/_aliases", .items, { api, request, _ throws(StoreError) in try api.updateAliases(request) })
        add(
            [.get],
            "/_resolve/index/{name}",
            .indices(Action.resolveIndex, capture: "name"),
            { api, request, c throws(StoreError) in try api.resolveIndex(request, c["name"]!) }
        )
        add(
            [.put],
            "/{index}",
            .indices(Action.createIndex),
            { api, request, c throws(StoreError) in try api.createIndex(request, c["index"]!) }
        )
        add(
            [.get],
            "/{index}",
            .indices(Action.getIndex),
            { api, request, c throws(StoreError) in try api.getIndex(request, c["index"]!) }
        )
        add(
            [.head],
            "/{index}",
            .indices(Action.getIndex),
            { api, request, c throws(StoreError) in try api.indexExists(request, c["index"]!) }
        )
        add(
            [.delete],
            "/{index}",
            .indices(Action.deleteIndex),
            { api, request, c throws(StoreError) in try api.deleteIndex(request, c["index"]!) }
        )
        return routes
    }()

    /// URL parameters ES accepts on the endpoints served here; others are refused as ES refuses them, so a typo
    /// (`?sise=5`) is an error instead of silently ignored.
    static let knownParameters: Set<String> = [
        // Everywhere.
        "pretty", "human", "error_trace", "filter_path", "format", "source", "source_content_type",
        "master_timeout", "timeout", "wait_for_active_shards", "local", "expand_wildcards", "ignore_unavailable",
        "allow_no_indices", "ignore_throttled", "flat_settings", "include_defaults", "features",
        // _cat and _cluster.
        "v", "h", "s", "help", "bytes", "time", "pri", "health", "level", "wait_for_status", "wait_for_nodes",
        "wait_for_events", "wait_for_no_relocating_shards", "wait_for_no_initializing_shards",
        "include_unloaded_segments",
        // Index and template management.
        "create", "cause", "preserve_existing", "reopen", "write_index_only", "include_type_name",
        "max_num_segments", "only_expunge_deletes", "flush",
        // Documents.
        "refresh", "routing", "version", "version_type", "if_seq_no", "if_primary_term", "op_type", "pipeline",
        "require_alias", "require_data_stream", "_source", "_source_includes", "_source_excludes",
        "_source_include", "_source_exclude", "stored_fields", "realtime", "preference", "retry_on_conflict",
        "lang", "list_executed_pipelines", "include_source_on_error",
        // Search and count.
        "q", "df", "default_operator", "analyzer", "analyze_wildcard", "lenient", "size", "from", "sort",
        "track_total_hits", "rest_total_hits_as_int", "typed_keys", "search_type", "request_cache",
        "allow_partial_search_results", "batched_reduce_size", "ccs_minimize_roundtrips",
        "max_concurrent_shard_requests", "pre_filter_shard_size", "scroll", "seq_no_primary_term",
        "terminate_after", "track_scores", "explain", "stats", "docvalue_fields", "min_score",
        "include_named_queries_score", "force_synthetic_source", "max_concurrent_searches", "scroll_id", "keep_alive",
        // Field capabilities.
        "fields", "include_unmapped", "filters", "types", "include_empty_fields",
        // By query.
        "conflicts", "max_docs", "slices", "scroll_size", "requests_per_second", "wait_for_completion",
        "search_timeout",
        // Security.
        "id", "name", "owner", "realm_name", "username", "with_limited_by", "active_only", "with_profile_uid",
        "usernames",
    ]

    /// Parameters every endpoint reads, checked as Elasticsearch checks them (`pretty=maybe` and `timeout=banana`
    /// are errors there, not ignored).
    static func validateCommonParameters(_ request: ESRequest) throws(StoreError) {
        for flag in ["pretty", "human", "error_trace"] { _ = try request.flag(flag) }
        for setting in ["timeout", "master_timeout"] {
            if let text = request.parameters[setting] { try SearchRequest.validateTimeValue(text, setting: setting) }
        }
    }

    /// Answers one request, never throwing: errors become ES error responses. With ``security``, the request is
    /// authenticated from its `authorization` first.
    public func handle(_ request: ESRequest) -> ESResponse {
        guard let security else { return handle(request, as: .internal) }
        let path = "/" + request.path.joined(separator: "/")
        switch security.authenticate(
            authorization: request.authorization,
            remoteAddress: request.remoteAddress,
            path: path
        ) {
        case .success(let authentication):
            return handle(request, as: authentication)
        case .failure(let error):
            var response = ESResponse.error(error)
            for value in ElasticsearchSecurity.wwwAuthenticate { response.headers.append(("WWW-Authenticate", value)) }
            return response
        }
    }

    /// Answers one request on behalf of an authenticated caller.
    public func handle(_ request: ESRequest, as authentication: Authentication) -> ESResponse {
        var request = request
        request.authentication = authentication
        let path = "/" + request.path.joined(separator: "/")
        var matchedPath = false
        for route in Self.routes {
            guard let captures = route.match(request.path) else { continue }
            matchedPath = true
            guard route.methods.contains(request.method) else { continue }
            if let unknown = request.parameters.keys.sorted().first(where: { !Self.knownParameters.contains($0) }) {
                return ESResponse.error(
                    .illegalArgument("request [\(path)] contains unrecognized parameter: [\(unknown)]")
                )
            }
            do {
                try Self.validateCommonParameters(request)
                let captures = try authorize(route.access, captures, request, authentication)
                var response = try route.handler(self, request, captures)
                if request.method == .head { response.body = .empty }
                return try postProcess(response, request)
            } catch {
                return ESResponse.error(error)
            }
        }
        if matchedPath {
            let allowed = Self.routes.filter { $0.match(request.path) != nil }.flatMap(\.methods).map(\.rawValue)
            return ESResponse(
                status: 405,
                json: [
                    "error": .string(
                        "Incorrect HTTP method for uri [\(path)] and method [\(request.method.rawValue)], allowed: "
                            + "[\(Set(allowed).sorted().joined(separator: ", "))]"
                    ),
                    "status": 405,
                ]
            )
        }
        return ESResponse(
            status: 400,
            json: [
                "error": .string("no handler found for uri [\(path)] and method [\(request.method.rawValue)]"),
                "status": 400,
            ]
        )
    }

    /// Checks a route's access for the caller; returns the captures with index expressions narrowed to what the caller
    /// may use.
    private func authorize(
        _ access: RouteAccess,
        _ captures: [String: String],
        _ request: ESRequest,
        _ authentication: Authentication
    ) throws(StoreError) -> [String: String] {
        var captures = captures
        switch access {
        case .cluster(let action):
            try authentication.checkCluster(action)
        case .indices(let action, let capture):
            if action == Action.deleteIndex, let expression = captures[capture] {
                try checkDestructive(expression)
            }
            if let narrowed = try authentication.authorizeIndices(captures[capture], action: action, store: store) {
                captures[capture] = narrowed
            }
        case .document(let create):
            let action =
                create || request.parameters["op_type"] == "create" ? Action.createDocument : Action.indexDocument
            try authentication.checkDocumentWrite(
                action,
                index: captures["index"] ?? "",
                table: authentication.indexTable(for: [action, Action.autoCreate], store: store)
            )
        case .items, .authenticated:
            break
        }
        return captures
    }

    /// Applies `filter_path` to a successful JSON response.
    private func postProcess(_ response: ESResponse, _ request: ESRequest) throws(StoreError) -> ESResponse {
        guard let filter = request.parameters["filter_path"], !filter.isEmpty, let json = response.json
        else { return response }
        var filtered = response
        filtered.body = .json(FilterPath(filter).apply(json))
        return filtered
    }

    // MARK: Info

    func info(_ request: ESRequest) -> ESResponse {
        ESResponse(json: [
            "name": .string(store.configuration.nodeName),
            "cluster_name": .string(store.configuration.clusterName),
            "cluster_uuid": .string(store.clusterUUID),
            "version": [
                "number": .string(Self.version),
                "build_flavor": "default",
                "build_type": "quarry",
                "build_hash": "quarry",
                "build_date": "2026-11-29T00:00:00.000Z",
                "build_snapshot": false,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            ],
            "tagline": "You Know, for Search",
        ])
    }

    func clusterHealth(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        let indices = try store.resolve(expression ?? "_all", options: .strict)
        return ESResponse(json: [
            "cluster_name": .string(store.configuration.clusterName),
            "status": "green",
            "timed_out": false,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": .int(Int64(indices.count)),
            "active_shards": .int(Int64(indices.count)),
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "unassigned_primary_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        ])
    }
}
