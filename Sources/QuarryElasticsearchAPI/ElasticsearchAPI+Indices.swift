import Foundation
import QuarryCore
import QuarrySearch

extension ElasticsearchAPI {
    func createIndex(_ request: ESRequest, _ name: String) throws(StoreError) -> ESResponse {
        let metadata = try store.createIndex(name, body: try request.json())
        return ESResponse(json: ["acknowledged": true, "shards_acknowledged": true, "index": .string(metadata.name)])
    }

    func getIndex(_ request: ESRequest, _ expression: String) throws(StoreError) -> ESResponse {
        var result = JSONObject()
        for metadata in try store.metadata(expression, options: try request.indicesOptions(.strict)) {
            result[metadata.name] = metadata.json
        }
        return ESResponse(json: .object(result))
    }

    func indexExists(_ request: ESRequest, _ expression: String) throws(StoreError) -> ESResponse {
        do {
            let names = try store.resolve(expression, options: try request.indicesOptions(.strict))
            return ESResponse(status: names.isEmpty ? 404 : 200, body: .empty)
        } catch {
            return ESResponse(status: 404, body: .empty)
        }
    }

    func deleteIndex(_ request: ESRequest, _ expression: String) throws(StoreError) -> ESResponse {
        try checkDestructive(expression)
        try store.deleteIndices(expression, options: try request.indicesOptions(.strict))
        return .acknowledged
    }

    /// Refuses a delete by pattern while `action.destructive_requires_name` is on; checked before security narrows
    /// the pattern to the caller's indices, which would otherwise read as names.
    func checkDestructive(_ expression: String) throws(StoreError) {
        if store.clusterSettings.destructiveRequiresName, IndexName.namesByPattern(expression) {
            throw .illegalArgument("Wildcard expressions or all indices are not allowed")
        }
    }

    // MARK: Cluster settings

    func getClusterSettings(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let settings = store.clusterSettings
        let flat = try request.flag("flat_settings")
        func shaped(_ object: JSONObject) -> JSON { flat ? .object(object) : ClusterSettings.nested(object) }
        var body: JSONObject = ["persistent": shaped(settings.persistent), "transient": shaped(settings.transient)]
        if try request.flag("include_defaults") { body["defaults"] = shaped(ClusterSettings.defaults) }
        return ESResponse(json: .object(body))
    }

    func putClusterSettings(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let body = try request.requiredObject()
        for key in body.keys where key != "persistent" && key != "transient" {
            throw .illegalArgument("request body contains unknown field [\(key)]")
        }
        let persistent = body["persistent"]?.objectValue ?? [:]
        let transient = body["transient"]?.objectValue ?? [:]
        let updated = try store.updateClusterSettings(persistent: persistent, transient: transient)
        // Elasticsearch answers with the settings the request changed.
        func changed(_ requested: JSONObject, _ now: JSONObject) -> JSON {
            var result = JSONObject()
            for key in ClusterSettings.flattened(requested).keys { result[key] = now[key] }
            return ClusterSettings.nested(result)
        }
        return ESResponse(json: [
            "acknowledged": true, "persistent": changed(persistent, updated.persistent),
            "transient": changed(transient, updated.transient),
        ])
    }

    func refresh(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        let count = try store.refresh(expression ?? "_all")
        return ESResponse(json: [
            "_shards": ["total": .int(Int64(count)), "successful": .int(Int64(count)), "failed": 0]
        ])
    }

    /// `POST /{index}/_flush`: writes the in-memory segments to the segments file, as Elasticsearch's flush commits
    /// Lucene's segments (documents are durable before either: both have a write-ahead log).
    func flush(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        let count = try store.flush(expression ?? "_all")
        return ESResponse(json: [
            "_shards": ["total": .int(Int64(count)), "successful": .int(Int64(count)), "failed": 0]
        ])
    }

    /// `POST /{index}/_forcemerge`: answers when the merge is done, as Elasticsearch does by default.
    func forceMerge(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        let maxSegments = try request.integer("max_num_segments")
        let onlyExpungeDeletes = try request.flag("only_expunge_deletes")
        if maxSegments != nil, onlyExpungeDeletes {
            throw .validation("cannot set only_expunge_deletes and max_num_segments at the same time")
        }
        if let maxSegments, maxSegments < 1, maxSegments != -1 {
            throw .illegalArgument("max_num_segments must be positive or -1, got [\(maxSegments)]")
        }
        if try !request.flag("wait_for_completion", default: true) {
            throw .illegalArgument("wait_for_completion=false is not supported: this store has no task API")
        }
        let count = try store.forceMerge(
            expression ?? "_all",
            maxSegments: maxSegments == -1 ? nil : maxSegments,
            onlyExpungeDeletes: onlyExpungeDeletes,
            flush: try request.flag("flush", default: true)
        )
        return ESResponse(json: [
            "_shards": ["total": .int(Int64(count)), "successful": .int(Int64(count)), "failed": 0]
        ])
    }

    func getMapping(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var result = JSONObject()
        for metadata in try store.metadata(expression ?? "_all", options: try request.indicesOptions(.strict)) {
            result[metadata.name] = ["mappings": .object(metadata.mappings.json)]
        }
        return ESResponse(json: .object(result))
    }

    func putMapping(_ request: ESRequest, _ expression: String) throws(StoreError) -> ESResponse {
        try store.putMapping(expression, body: try request.requiredObject())
        return .acknowledged
    }

    func getSettings(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var result = JSONObject()
        for metadata in try store.metadata(expression ?? "_all", options: try request.indicesOptions(.strict)) {
            result[metadata.name] = ["settings": metadata.nestedSettings]
        }
        return ESResponse(json: .object(result))
    }

    func putSettings(_ request: ESRequest, _ expression: String) throws(StoreError) -> ESResponse {
        try store.putSettings(expression, body: try request.requiredObject())
        return .acknowledged
    }

    // MARK: Aliases

    func getAliases(_ request: ESRequest, indices: String?, names: String?) throws(StoreError) -> ESResponse {
        let found = try store.aliases(indices: indices, names: names)
        if let names, found.isEmpty {
            return ESResponse(
                status: 404,
                json: ["error": .string("alias [\(names)] missing"), "status": 404]
            )
        }
        var result = JSONObject()
        for (index, aliases) in found { result[index] = ["aliases": .object(aliases)] }
        return ESResponse(json: .object(result))
    }

    func aliasExists(_ request: ESRequest, indices: String?, names: String) -> ESResponse {
        let found = (try? store.aliases(indices: indices, names: names)) ?? []
        return ESResponse(status: found.isEmpty ? 404 : 200, body: .empty)
    }

    func putAlias(_ request: ESRequest, _ expression: String, _ name: String) throws(StoreError) -> ESResponse {
        try store.putAlias(expression, name: name, body: try request.json()?.objectValue ?? [:])
        return .acknowledged
    }

    func deleteAlias(_ request: ESRequest, _ expression: String, _ name: String) throws(StoreError) -> ESResponse {
        try store.deleteAlias(expression, name: name)
        return .acknowledged
    }

    func updateAliases(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let body = try request.requiredObject()
        guard let actions = body["actions"]?.arrayValue else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: no actions specified;",
                status: 400
            )
        }
        try authorizeAliasActions(actions, request.authentication)
        try store.updateAliases(actions)
        return ESResponse(json: ["acknowledged": true, "errors": false])
    }

    /// Every index and alias an `_aliases` action names must allow `indices:admin/aliases` (a `remove_index` action,
    /// `indices:admin/delete`); patterns must be covered as a whole, since the actions are applied as written.
    private func authorizeAliasActions(_ actions: [JSON], _ authentication: Authentication) throws(StoreError) {
        guard let table = authentication.indexTable(for: [Action.aliases, Action.deleteIndex], store: store) else {
            return
        }
        for action in actions {
            guard let (kind, body) = action.objectValue?.first, let object = body.objectValue else { continue }
            let verb = kind == "remove_index" ? Action.deleteIndex : Action.aliases
            var names: [String] = []
            for key in ["index", "indices", "alias", "aliases"] {
                if let value = object[key] {
                    names += value.arrayValue?.compactMap(\.stringValue) ?? [value.stringValue ?? ""]
                }
            }
            for name in names where !name.isEmpty {
                if name.contains("*") {
                    guard
                        authentication.layers.allSatisfy({ layer in
                            layer.indices.contains { rule in
                                rule.names.contains { $0.covers(name) } && rule.privileges.contains { $0.grants(verb) }
                            }
                        })
                    else { throw authentication.indicesDenied(verb, [name]) }
                } else {
                    try authentication.checkNamed(verb, name, table: table)
                }
            }
        }
    }

    func resolveIndex(_ request: ESRequest, _ expression: String) throws(StoreError) -> ESResponse {
        let names = try store.resolve(
            expression,
            options: IndicesOptions(ignoreUnavailable: true, allowNoIndices: true)
        )
        var indices: [JSON] = []
        var aliases: [String: [String]] = [:]
        for metadata in try store.metadata(names.joined(separator: ","), options: .search) where !names.isEmpty {
            let sortedAliases = metadata.aliases.keys.sorted()
            var entry: JSONObject = ["name": .string(metadata.name)]
            if !sortedAliases.isEmpty { entry["aliases"] = .array(sortedAliases.map { .string($0) }) }
            entry["attributes"] = ["open"]
            indices.append(.object(entry))
            for alias in sortedAliases { aliases[alias, default: []].append(metadata.name) }
        }
        return ESResponse(json: [
            "indices": .array(indices),
            "aliases": .array(
                aliases.keys.sorted().map {
                    ["name": .string($0), "indices": .array(aliases[$0]!.map { .string($0) })]
                }
            ),
            "data_streams": [],
        ])
    }

    // MARK: Templates

    func putTemplate(_ request: ESRequest, _ name: String) throws(StoreError) -> ESResponse {
        try store.putTemplate(name, body: try request.requiredObject(), create: try request.flag("create"))
        return .acknowledged
    }

    func getTemplates(_ request: ESRequest, _ name: String?) throws(StoreError) -> ESResponse {
        let templates = store.templates(matching: name)
        if let name, templates.isEmpty {
            throw .resourceNotFound("index template matching [\(name)] not found")
        }
        return ESResponse(json: [
            "index_templates": .array(
                templates.map { ["name": .string($0.name), "index_template": .object($0.body)] }
            )
        ])
    }

    func templateExists(_ name: String) -> ESResponse {
        ESResponse(status: store.templates(matching: name).isEmpty ? 404 : 200, body: .empty)
    }

    func deleteTemplate(_ name: String) throws(StoreError) -> ESResponse {
        try store.deleteTemplates(name)
        return .acknowledged
    }

    // MARK: _cat

    func catIndices(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        let summaries = try store.summaries(expression ?? "_all")
        let unit = request.parameters["bytes"]
        let rows: [[(String, String)]] = summaries.sorted { $0.name < $1.name }.map { summary in
            let size = Self.bytes(summary.sizeInBytes, unit: unit)
            return [
                ("health", "green"), ("status", "open"), ("index", summary.name), ("uuid", summary.uuid),
                ("pri", "1"), ("rep", "0"), ("docs.count", String(summary.documentCount)),
                ("docs.deleted", String(summary.deletedCount)),
                ("store.size", size), ("pri.store.size", size), ("dataset.size", size),
            ]
        }
        return try catResponse(request, rows)
    }

    /// `_cat/segments`: a row per flushed segment (the documents still in memory are in none yet).
    func catSegments(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var rows: [[(String, String)]] = []
        for (index, segments) in try store.segments(expression ?? "_all").sorted(by: { $0.index < $1.index }) {
            for (generation, segment) in segments.enumerated() {
                rows.append([
                    ("index", index), ("shard", "0"), ("prirep", "p"), ("ip", "127.0.0.1"), ("segment", segment.name),
                    ("generation", String(generation)), ("docs.count", String(segment.documents)),
                    ("docs.deleted", String(segment.deletedDocuments)), ("committed", "true"),
                    ("searchable", "true"), ("compound", "false"),
                ])
            }
        }
        return try catResponse(request, rows)
    }

    func catHealth(_ request: ESRequest) throws(StoreError) -> ESResponse {
        let count = try store.resolve("_all").count
        let epoch = Int64(Date().timeIntervalSince1970)
        let rows: [[(String, String)]] = [
            [
                ("epoch", String(epoch)), ("timestamp", ""), ("cluster", store.configuration.clusterName),
                ("status", "green"), ("node.total", "1"), ("node.data", "1"), ("shards", String(count)),
                ("pri", String(count)), ("relo", "0"), ("init", "0"), ("unassign", "0"), ("pending_tasks", "0"),
                ("max_task_wait_time", "-"), ("active_shards_percent", "100.0%"),
            ]
        ]
        return try catResponse(request, rows)
    }

    func catCount(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        let count = try store.count(expression ?? "_all", query: .matchAll(boost: 1))
        let epoch = Int64(Date().timeIntervalSince1970)
        return try catResponse(request, [[("epoch", String(epoch)), ("timestamp", ""), ("count", String(count))]])
    }

    /// Renders `_cat` rows as JSON (`format=json`) or ES's aligned text table (`v` adds the header).
    private func catResponse(_ request: ESRequest, _ rows: [[(String, String)]]) throws(StoreError) -> ESResponse {
        var rows = rows
        if let format = request.parameters["format"], !["json", "text", "txt"].contains(format) {
            // Quarry renders `_cat` as text or JSON only (Elasticsearch also has YAML, CBOR and Smile).
            throw .illegalArgument("Unsupported format [\(format)]: this store renders _cat as [text] or [json]")
        }
        if let columns = request.parameters["h"]?.split(separator: ",").map(String.init) {
            rows = rows.map { row in columns.compactMap { name in row.first { $0.0 == name } } }
        }
        if request.parameters["format"] == "json" {
            return ESResponse(
                json: .array(
                    rows.map { row in
                        var object = JSONObject()
                        for (key, value) in row { object[key] = .string(value) }
                        return .object(object)
                    }
                )
            )
        }
        guard let first = rows.first else { return ESResponse(status: 200, body: .text("")) }
        let verbose = try request.flag("v")
        var table = verbose ? [first.map(\.0)] : []
        table += rows.map { $0.map(\.1) }
        var widths = Array(repeating: 0, count: first.count)
        for row in table { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let text = table.map { row in
            row.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: " ")
        }.joined(separator: "\n")
        return ESResponse(status: 200, body: .text(text + "\n"))
    }

    /// A size as `_cat` prints it: in the unit `bytes=` asks for (`b`, `kb`, … as a whole number, rounded down, as
    /// Elasticsearch does), else human-readable.
    static func bytes(_ bytes: Int64, unit: String?) -> String {
        let units = ["b": 0, "kb": 1, "mb": 2, "gb": 3, "tb": 4, "pb": 5]
        guard let unit, let power = units[unit.lowercased()] else { return humanBytes(bytes) }
        var value = bytes
        for _ in 0..<power { value /= 1024 }
        return String(value)
    }

    static func humanBytes(_ bytes: Int64) -> String {
        let units = ["b", "kb", "mb", "gb", "tb"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes)b" : String(format: "%.1f%@", value, units[unit])
    }
}
