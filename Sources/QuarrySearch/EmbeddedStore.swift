public import Foundation
import GRDB
public import QuarryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Quarry's embedded Elasticsearch-compatible store: indices in a data directory, one SQLite file each, with ES's
/// index expressions, templates, aliases, document APIs and search.
///
/// One process owns a data directory at a time (an exclusive lock on `quarry.lock`); a second one gets a clear
/// error instead of a corrupted store.
///
/// ```swift
/// let store = try EmbeddedStore(configuration: .init(dataDirectory: url))
/// _ = try store.bulk([.init(index: "logs", operation: .index(.init(id: nil, source: bytes, document: doc)))])
/// let results = try store.search("logs*", SearchRequest(body: ["query": ["match_all": [:]]]))
/// ```
///
/// `@unchecked Sendable`: `indices` and `templates` are only touched while holding `lock`; each index guards itself.
public final class EmbeddedStore: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: URL
        public var clusterName: String
        public var nodeName: String
        /// Documents an index keeps in its in-memory segment before writing the segment to its file. Smaller
        /// segments use less memory and make more segments to search.
        public var segmentDocuments: Int

        public init(
            dataDirectory: URL,
            clusterName: String = "quarry",
            nodeName: String = "quarry",
            segmentDocuments: Int = 32_768
        ) {
            self.dataDirectory = dataDirectory
            self.clusterName = clusterName
            self.nodeName = nodeName
            self.segmentDocuments = segmentDocuments
        }
    }

    /// One write of a bulk request, addressed to an index (or alias) by name.
    public struct BulkItem: Sendable {
        public var index: String
        public var operation: WriteOperation

        public init(index: String, operation: WriteOperation) {
            self.index = index
            self.operation = operation
        }
    }

    public let configuration: Configuration
    /// A stable identifier of this store, reported as `cluster_uuid`.
    public let clusterUUID: String
    private let lock = NSLock()
    /// The open scrolls and points in time.
    let searchContexts = SearchContexts()
    private var indices: [String: StoredIndex] = [:]
    private var templates: [String: IndexTemplate] = [:]
    private var settings = ClusterSettings()
    private let catalog: DatabaseQueue
    /// The directory lock's descriptor; -1 once ``close()`` released it.
    private var lockDescriptor: Int32

    private var indicesDirectory: URL { configuration.dataDirectory.appendingPathComponent("indices") }

    /// Every change of the catalog's schema, in order (GRDB's `grdb_migrations` table records those applied). A
    /// catalog written before migrations existed holds `v1` without that table; `v1` creates only what is missing,
    /// so it is adopted as it is.
    static let catalogMigrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS templates(name TEXT PRIMARY KEY, body TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    """
            )
        }
        return migrator
    }()

    /// Opens (creating if needed) the store in `configuration.dataDirectory`.
    /// - Throws: ``StoreError`` when the directory cannot be used or another process holds it.
    public init(configuration: Configuration) throws {
        self.configuration = configuration
        let fileManager = FileManager.default
        let directory = configuration.dataDirectory
        try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
        try fileManager.createDirectory(
            at: directory.appendingPathComponent("indices"),
            withIntermediateDirectories: true
        )
        let lockPath = directory.appendingPathComponent("quarry.lock").path
        // O_CLOEXEC: a flock belongs to the open file, which a child process started meanwhile (by any thread)
        // would otherwise inherit and keep locked after this store closes.
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StoreError.internalFailure("cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        var waited = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(descriptor, &buffer, 31, 0)
            let owner = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingSpaces : "unknown"
            // This process wrote the pid: a store it closed a moment ago, whose descriptor a child process that
            // another thread was starting still holds until it execs (O_CLOEXEC closes it then). Wait a little.
            if owner == "\(getpid())", waited < 200 {
                waited += 1
                usleep(10_000)
                continue
            }
            closeDescriptor(descriptor)
            throw StoreError(
                type: "lock_obtain_failed_exception",
                reason: "the data directory [\(directory.path)] is in use by another Quarry process (pid \(owner)); "
                    + "stop it or use another --data directory",
                status: 503
            )
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        lockDescriptor = descriptor

        var catalogConfiguration = GRDB.Configuration()
        catalogConfiguration.journalMode = .wal
        catalogConfiguration.busyMode = .timeout(10)
        catalog = try DatabaseQueue(
            path: directory.appendingPathComponent("catalog.sqlite").path,
            configuration: catalogConfiguration
        )
        var uuid = ""
        var loadedTemplates: [String: IndexTemplate] = [:]
        var persistent: JSONObject = [:]
        if try catalog.read({ db in try Self.catalogMigrator.hasBeenSuperseded(db) }) {
            throw StoreError.internalFailure(
                "\(directory.path) was written by a newer Quarry: its catalog schema is past '\(Self.catalogMigrator.migrations.last ?? "")'"
            )
        }
        try Self.catalogMigrator.migrate(catalog)
        try catalog.inDatabase { db in
            if let existing = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'cluster_uuid'") {
                uuid = existing
            } else {
                uuid = Self.makeUUID()
                try db.execute(sql: "INSERT INTO settings(key, value) VALUES ('cluster_uuid', ?)", arguments: [uuid])
            }
            if let stored = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'persistent'") {
                persistent = try JSON.parse(stored).objectValue ?? [:]
            }
            for row in try Row.fetchAll(db, sql: "SELECT name, body FROM templates") {
                let body = try JSON.parse(row["body"] as String)
                loadedTemplates[row["name"]] = try IndexTemplate(name: row["name"], body: body.objectValue ?? [:])
            }
        }
        clusterUUID = uuid
        templates = loadedTemplates
        settings.persistent = persistent
        for file in try fileManager.contentsOfDirectory(atPath: indicesDirectory.path)
        where file.hasSuffix(".sqlite") && !file.hasSuffix(".segments.sqlite") {
            let index = try StoredIndex.open(
                at: indicesDirectory.appendingPathComponent(file),
                segmentDocuments: configuration.segmentDocuments
            )
            indices[index.name] = index
        }
    }

    deinit {
        // A store dropped without close() keeps its unflushed segment in the index file (replayed on the next open),
        // but the directory lock is released only after segment writes already started have ended, so the next
        // store never sees a half-written segments file change under it.
        for index in indices.values { index.waitForBackgroundWrites() }
        if lockDescriptor >= 0 { closeDescriptor(lockDescriptor) }
    }

    /// Writes every in-memory segment out and closes the files.
    /// Flushes and closes every index, then releases the data directory for another process (or store).
    public func close() throws {
        try lock.withLock {
            for index in indices.values {
                try index.flush()
                try index.close()
            }
            indices.removeAll()
            if lockDescriptor >= 0 {
                closeDescriptor(lockDescriptor)
                lockDescriptor = -1
            }
        }
    }

    static func makeUUID() -> String {
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    // MARK: Index expressions

    /// Resolves `packetbeat-*`, `a,b`, `_all`, `*,-excluded` and aliases to index names, in a stable order.
    public func resolve(_ expression: String, options: IndicesOptions = .search) throws(StoreError) -> [String] {
        let snapshot = lock.withLock { indices.mapValues(\.metadata) }
        return try Self.resolve(expression, options: options, indices: snapshot)
    }

    static func resolve(
        _ expression: String,
        options: IndicesOptions,
        indices: [String: IndexMetadata]
    ) throws(StoreError)
        -> [String]
    {
        let parts = expression.isEmpty ? ["_all"] : expression.split(separator: ",").map(String.init)
        var result: [String] = []
        var seenWildcard = false
        for part in parts {
            if part == "_all" || part == "*" {
                seenWildcard = true
                for name in indices.keys.sorted() where options.expandHidden || !name.hasPrefix(".") {
                    if !result.contains(name) { result.append(name) }
                }
                continue
            }
            if part.hasPrefix("-"), seenWildcard {
                let pattern = String(part.dropFirst())
                result.removeAll { Wildcard.matches(pattern, $0) }
                continue
            }
            if part.contains("*") {
                seenWildcard = true
                var matched = false
                for (name, metadata) in indices.sorted(by: { $0.key < $1.key }) {
                    // Hidden indices (`.name`) match only patterns that start with a dot, unless asked for.
                    if name.hasPrefix("."), !part.hasPrefix("."), !options.expandHidden { continue }
                    if Wildcard.matches(part, name)
                        || metadata.aliases.keys.contains(where: { Wildcard.matches(part, $0) })
                    {
                        matched = true
                        if !result.contains(name) { result.append(name) }
                    }
                }
                if !matched, !options.allowNoIndices {
                    throw .indexNotFound(part)
                }
                continue
            }
            if indices[part] != nil {
                if !result.contains(part) { result.append(part) }
                continue
            }
            let aliased = indices.filter { $0.value.aliases[part] != nil }.keys.sorted()
            if !aliased.isEmpty {
                for name in aliased where !result.contains(name) { result.append(name) }
                continue
            }
            if !options.ignoreUnavailable { throw .indexNotFound(part) }
        }
        if result.isEmpty, !options.allowNoIndices {
            throw .indexNotFound(expression)
        }
        return result
    }

    /// Every index with the names of its aliases, sorted by index name: what security expands index patterns
    /// against, so that a wildcard reaches only the indices a caller may use.
    public func indexNamesWithAliases() -> [(index: String, aliases: [String])] {
        lock.withLock { indices.map { ($0.key, $0.value.metadata.aliases.keys.sorted()) } }.sorted {
            $0.index < $1.index
        }
    }

    func openIndices(_ names: [String]) -> [StoredIndex] {
        lock.withLock { names.compactMap { indices[$0] } }
    }

    // MARK: Index management

    /// Creates an index from a `PUT /{index}` body (`settings`, `mappings`, `aliases`), merged over matching
    /// templates.
    @discardableResult
    public func createIndex(_ name: String, body: JSON? = nil) throws(StoreError) -> IndexMetadata {
        try IndexName.validate(name)
        let body = body ?? .object([:])
        guard case .object(let object) = body else {
            throw .parsing("request body must be an object")
        }
        for key in object.keys where !["settings", "mappings", "aliases"].contains(key) {
            throw .parsing("unknown key [\(key)] for create index")
        }
        return try lock.locked { () throws(StoreError) -> IndexMetadata in
            if let existing = indices[name] {
                throw .indexAlreadyExists(name, uuid: existing.metadata.uuid)
            }
            if indices.values.contains(where: { $0.metadata.aliases[name] != nil }) {
                throw .invalidIndexName(name, "an alias with the same name already exists")
            }
            var mappings = Mappings()
            var settings: JSONObject = [:]
            var aliases: JSONObject = [:]
            let template = matchingTemplate(for: name)
            if let template {
                settings = try IndexMetadata.flattenSettings(template.settings)
                aliases = template.aliases
            }
            if let requested = object["settings"]?.objectValue {
                for (key, value) in try IndexMetadata.flattenSettings(requested) { settings[key] = value }
            }
            try mappings.useNormalizers(of: settings)
            if let template { try mappings.merge(template.mappings) }
            if let requested = object["mappings"]?.objectValue { try mappings.merge(requested) }
            try mappings.checkLimits(MappingLimits(settings: settings))
            if let requested = object["aliases"]?.objectValue {
                for (key, value) in requested { aliases[key] = value }
            }
            let uuid = Self.makeUUID()
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            var full: JSONObject = [
                "index.creation_date": .string(String(now)),
                "index.number_of_shards": "1",
                "index.number_of_replicas": "1",
                "index.uuid": .string(uuid),
                "index.version.created": "8521000",
                "index.provided_name": .string(name),
            ]
            for (key, value) in settings { full[key] = value }
            let metadata = IndexMetadata(
                name: name,
                uuid: uuid,
                creationDate: now,
                settings: full,
                mappings: mappings,
                aliases: aliases
            )
            do {
                // Files are named by the index's unique id, never by its name: names may hold characters a file
                // system treats specially, differ only where a file system folds them, or end like the segments
                // file (`foo.segments`). The name is read back from the file's metadata.
                let index = try StoredIndex.create(
                    at: indicesDirectory.appendingPathComponent(uuid + ".sqlite"),
                    metadata: metadata,
                    segmentDocuments: configuration.segmentDocuments
                )
                indices[name] = index
            } catch {
                throw .internalFailure("could not create index [\(name)]: \(error)")
            }
            return metadata
        }
    }

    private func matchingTemplate(for name: String) -> IndexTemplate? {
        templates.values.filter { $0.matches(name) }.max { a, b in
            a.priority != b.priority ? a.priority < b.priority : a.name > b.name
        }
    }

    /// Deletes the indices an expression names; returns their names.
    @discardableResult
    public func deleteIndices(_ expression: String, options: IndicesOptions = .strict) throws(StoreError) -> [String] {
        let names = try resolve(expression, options: options)
        do {
            try lock.withLock {
                for name in names {
                    guard let index = indices.removeValue(forKey: name) else { continue }
                    try index.close(writingSegments: false)
                    for file in [index.fileURL, index.segmentsURL] {
                        for suffix in ["", "-wal", "-shm"] {
                            try? FileManager.default.removeItem(atPath: file.path + suffix)
                        }
                    }
                }
            }
        } catch {
            throw .internalFailure("could not delete index: \(error)")
        }
        return names
    }

    // MARK: Cluster settings

    /// The cluster settings in force (see ``ClusterSettings``).
    public var clusterSettings: ClusterSettings { lock.withLock { settings } }

    /// Applies `PUT /_cluster/settings`: every setting of both parts is checked before any is applied; persistent
    /// ones are written to the catalog.
    @discardableResult
    public func updateClusterSettings(
        persistent: JSONObject,
        transient: JSONObject
    ) throws(StoreError)
        -> ClusterSettings
    {
        try lock.locked { () throws(StoreError) -> ClusterSettings in
            var updated = settings
            updated.persistent = try ClusterSettings.apply(persistent, to: settings.persistent, scope: "persistent")
            updated.transient = try ClusterSettings.apply(transient, to: settings.transient, scope: "transient")
            let stored = JSON.object(updated.persistent).serialized()
            do {
                try catalog.write { db in
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO settings(key, value) VALUES ('persistent', ?)",
                        arguments: [stored]
                    )
                }
            } catch {
                throw .internalFailure("could not store the cluster settings: \(error)")
            }
            settings = updated
            return updated
        }
    }

    /// The metadata of the indices an expression names.
    public func metadata(_ expression: String, options: IndicesOptions = .strict) throws(StoreError) -> [IndexMetadata]
    {
        let names = try resolve(expression, options: options)
        return openIndices(names).map(\.metadata)
    }

    /// Adds fields to the mappings of the indices an expression names.
    public func putMapping(_ expression: String, body: JSONObject) throws(StoreError) {
        let names = try resolve(expression, options: .strict)
        for index in openIndices(names) {
            do {
                try index.updateMetadata { metadata in
                    try metadata.mappings.merge(body)
                    try metadata.mappings.checkLimits(MappingLimits(settings: metadata.settings))
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw .internalFailure("could not update mapping: \(error)")
            }
        }
    }

    /// Replaces settings that may change on an open index (`index.max_result_window`, replicas, …).
    public func putSettings(_ expression: String, body: JSONObject) throws(StoreError) {
        let names = try resolve(expression, options: .strict)
        let flat = try IndexMetadata.flattenSettings(body["settings"]?.objectValue ?? body)
        for key in flat.keys where ["index.number_of_shards", "index.uuid", "index.creation_date"].contains(key) {
            throw .illegalArgument("Can't update non dynamic settings [[\(key)]] for open indices")
        }
        for index in openIndices(names) {
            do {
                try index.updateMetadata { metadata in
                    for (key, value) in flat { metadata.settings[key] = value }
                }
            } catch {
                throw .internalFailure("could not update settings: \(error)")
            }
        }
    }

    // MARK: Aliases

    /// Applies `_aliases` actions (`add`, `remove`, `remove_index`) atomically per index.
    public func updateAliases(_ actions: [JSON]) throws(StoreError) {
        for action in actions {
            guard case .object(let object) = action, let (kind, body) = object.first, let spec = body.objectValue else {
                throw .parsing("[aliases] malformed action")
            }
            let indexExpression =
                spec["index"]?.stringValue
                ?? spec["indices"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ",") ?? ""
            let aliasNames =
                spec["alias"]?.stringValue.map { [$0] }
                ?? spec["aliases"]?.arrayValue?.compactMap(\.stringValue) ?? []
            switch kind {
            case "add":
                var definition = spec
                for key in ["index", "indices", "alias", "aliases"] { definition.removeValue(forKey: key) }
                for alias in aliasNames { try putAlias(indexExpression, name: alias, body: definition) }
            case "remove":
                for alias in aliasNames { try deleteAlias(indexExpression, name: alias) }
            case "remove_index":
                try deleteIndices(indexExpression)
            default:
                throw .parsing("[aliases] unknown action [\(kind)]")
            }
        }
    }

    /// Adds alias `name` to the indices of an expression.
    public func putAlias(_ expression: String, name: String, body: JSONObject = [:]) throws(StoreError) {
        try IndexName.validate(name)
        let names = try resolve(expression, options: .strict)
        if lock.withLock({ indices[name] != nil }) {
            throw .invalidIndexName(name, "an index or data stream exists with the same name as the alias")
        }
        for index in openIndices(names) {
            do {
                try index.updateMetadata { $0.aliases[name] = .object(body) }
            } catch {
                throw .internalFailure("could not add alias: \(error)")
            }
        }
    }

    /// Removes aliases matching `name` (wildcards allowed) from the indices of an expression.
    @discardableResult
    public func deleteAlias(_ expression: String, name: String) throws(StoreError) -> Int {
        let names = try resolve(expression, options: .strict)
        var removed = 0
        let patterns = name.split(separator: ",").map(String.init)
        for index in openIndices(names) {
            let matching = index.metadata.aliases.keys.filter { alias in
                patterns.contains { $0 == "_all" || Wildcard.matches($0, alias) }
            }
            guard !matching.isEmpty else { continue }
            removed += matching.count
            do {
                try index.updateMetadata { metadata in
                    for alias in matching { metadata.aliases.removeValue(forKey: alias) }
                }
            } catch {
                throw .internalFailure("could not remove alias: \(error)")
            }
        }
        if removed == 0 {
            throw StoreError(type: "aliases_not_found_exception", reason: "aliases [\(name)] missing", status: 404)
        }
        return removed
    }

    /// Aliases by index, optionally limited to an index expression and alias name patterns.
    public func aliases(indices expression: String?, names: String?) throws(StoreError) -> [(String, JSONObject)] {
        let indexNames = try resolve(expression ?? "_all", options: .strict)
        let patterns = names?.split(separator: ",").map(String.init)
        var result: [(String, JSONObject)] = []
        for index in openIndices(indexNames) {
            var aliases = JSONObject()
            for (alias, definition) in index.metadata.aliases {
                if let patterns, !patterns.contains(where: { $0 == "_all" || Wildcard.matches($0, alias) }) { continue }
                aliases[alias] = definition
            }
            if patterns == nil || !aliases.isEmpty { result.append((index.name, aliases)) }
        }
        return result
    }

    // MARK: Templates

    /// Creates or replaces a composable index template.
    public func putTemplate(_ name: String, body: JSONObject, create: Bool = false) throws(StoreError) {
        let template = try IndexTemplate(name: name, body: body)
        try lock.locked { () throws(StoreError) in
            if create, templates[name] != nil {
                throw .illegalArgument("index template [\(name)] already exists")
            }
            do {
                try catalog.inDatabase { db in
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO templates(name, body) VALUES (?, ?)",
                        arguments: [name, JSON.object(template.body).serialized()]
                    )
                }
            } catch {
                throw .internalFailure("could not store template: \(error)")
            }
            templates[name] = template
        }
    }

    /// Templates whose names match `pattern` (all when `nil`), sorted by name.
    public func templates(matching pattern: String? = nil) -> [IndexTemplate] {
        lock.withLock {
            templates.values.filter { template in
                guard let pattern else { return true }
                return pattern.split(separator: ",").contains { Wildcard.matches(String($0), template.name) }
            }.sorted { $0.name < $1.name }
        }
    }

    /// Deletes templates by name or pattern.
    public func deleteTemplates(_ pattern: String) throws(StoreError) {
        let names = templates(matching: pattern).map(\.name)
        guard !names.isEmpty else {
            throw .resourceNotFound("index_template matching [\(pattern)] not found")
        }
        do {
            try lock.withLock {
                try catalog.inDatabase { db in
                    for name in names { try db.execute(sql: "DELETE FROM templates WHERE name = ?", arguments: [name]) }
                }
                for name in names { templates.removeValue(forKey: name) }
            }
        } catch {
            throw .internalFailure("could not delete template: \(error)")
        }
    }

    // MARK: Documents

    /// The index a write to `name` goes to: the index itself, the write index of an alias, or a new index
    /// created from templates.
    private func writeTarget(_ name: String) throws(StoreError) -> StoredIndex {
        let existing: StoredIndex? = lock.withLock {
            if let index = indices[name] { return index }
            let aliased = indices.values.filter { $0.metadata.aliases[name] != nil }
            if aliased.count == 1 { return aliased[0] }
            return aliased.first { $0.metadata.aliases[name]?["is_write_index"]?.boolValue == true }
        }
        if let existing { return existing }
        if lock.withLock({ indices.values.contains { $0.metadata.aliases[name] != nil } }) {
            throw .illegalArgument(
                "no write index is defined for alias [\(name)]. The write index may be explicitly disabled using "
                    + "is_write_index=false or the alias points to multiple indices without one being designated as "
                    + "a write index"
            )
        }
        do {
            try createIndex(name)
        } catch  where error.type == "resource_already_exists_exception" {
            // Another request created it in between.
        }
        guard let index = lock.withLock({ indices[name] }) else { throw .indexNotFound(name) }
        return index
    }

    /// Applies bulk items; each index's items commit in one transaction. Results are in item order.
    public func bulk(_ items: [BulkItem]) -> [WriteResult] {
        var results = [WriteResult?](repeating: nil, count: items.count)
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for (position, item) in items.enumerated() {
            if groups[item.index] == nil { order.append(item.index) }
            groups[item.index, default: []].append(position)
        }
        for name in order {
            let positions = groups[name]!
            do {
                let index = try writeTarget(name)
                let written = try index.write(positions.map { items[$0].operation })
                for (position, result) in zip(positions, written) { results[position] = result }
            } catch {
                let storeError = error as? StoreError ?? .internalFailure("write failed: \(error)")
                for position in positions {
                    results[position] = .failure(index: name, id: items[position].operation.id ?? "", storeError)
                }
            }
        }
        return results.map { $0! }
    }

    /// One write, with its failure thrown.
    public func write(index: String, _ operation: WriteOperation) throws(StoreError) -> WriteResult {
        let result = bulk([BulkItem(index: index, operation: operation)])[0]
        if let error = result.error { throw error }
        return result
    }

    /// A document by id.
    public func get(index name: String, id: String) throws(StoreError) -> StoredDocument? {
        let names = try resolve(name, options: .strict)
        guard names.count == 1 else {
            throw .illegalArgument(
                "alias [\(name)] has more than one index associated with it [\(names)], can't execute a single index op"
            )
        }
        guard let index = openIndices(names).first else { throw .indexNotFound(name) }
        do {
            return try index.get(id)
        } catch {
            throw .internalFailure("could not read document: \(error)")
        }
    }

    /// Makes recent writes durable in segment form (writes are already durable and searchable).
    public func refresh(_ expression: String) throws(StoreError) -> Int {
        try resolve(expression, options: .search).count
    }

    /// Writes in-memory segments out (`_flush`, before measuring disk usage, and at shutdown); returns the number
    /// of indices.
    @discardableResult
    public func flush(_ expression: String = "_all") throws(StoreError) -> Int {
        let indices = openIndices(try resolve(expression, options: .search))
        for index in indices {
            do { try index.flush() } catch { throw .internalFailure("flush failed: \(error)") }
        }
        return indices.count
    }

    /// `POST /{index}/_forcemerge`: merges each index's flushed segments down to `maxSegments` (or, with
    /// `onlyExpungeDeletes`, rewrites those with deleted documents; with neither, merges what the merge policy
    /// would), after flushing the in-memory ones unless `flush` is false. Returns the number of indices merged.
    public func forceMerge(
        _ expression: String,
        maxSegments: Int? = nil,
        onlyExpungeDeletes: Bool = false,
        flush: Bool = true
    ) throws(StoreError) -> Int {
        let indices = openIndices(try resolve(expression, options: .search))
        for index in indices {
            do {
                try index.forceMerge(maxSegments: maxSegments, onlyExpungeDeletes: onlyExpungeDeletes, flush: flush)
            } catch {
                throw .internalFailure("force merge of [\(index.name)] failed: \(error)")
            }
        }
        return indices.count
    }

    /// Each index's flushed segments as `_cat/segments` lists them: first document, documents, live documents,
    /// in document order.
    public func segments(_ expression: String) throws(StoreError) -> [(index: String, segments: [SegmentSummary])] {
        openIndices(try resolve(expression, options: .search)).map { ($0.name, $0.segmentSummaries) }
    }

    // MARK: Search

    /// Runs a search: the page of hits asked for, with the total and scores (QuarryElasticsearchAPI renders them as
    /// Elasticsearch's response body).
    public func search(
        _ expression: String,
        _ request: SearchRequest,
        options: IndicesOptions = .search
    ) throws(StoreError) -> SearchResults {
        let names = try resolve(expression, options: options)
        return try run(request, on: openIndices(names)).results
    }

    /// Runs `request` on `indices` (in this order: a scroll keeps it): the results, and where the page ended.
    func run(
        _ request: SearchRequest,
        on indices: [StoredIndex]
    ) throws(StoreError) -> (results: SearchResults, end: SearchCursor?) {
        let started = DispatchTime.now()
        let executor = SearchExecutor(request: request, now: Int64(Date().timeIntervalSince1970 * 1000))
        let outcome: SearchExecutor.Outcome
        do {
            outcome = try executor.run(indices)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .internalFailure("search failed: \(error)")
        }
        let mappings = Dictionary(uniqueKeysWithValues: indices.map { ($0.name, $0.metadata.mappings) })
        let sourceFilter = request.source.isFiltering ? request.source.compiled() : nil
        // With `stored_fields`, a hit carries its source only when the request names `_source` too.
        let wantsSource: Bool
        var storedFieldNames: [String] = []
        switch request.storedFields {
        case nil: wantsSource = request.source.enabled
        case .none?: wantsSource = false
        case .fields(let names)?:
            wantsSource = request.sourceRequested
            storedFieldNames = names
        }
        var fetchers: [String: SourceFieldFetcher] = [:]
        if !request.fields.isEmpty || !storedFieldNames.isEmpty {
            for index in indices {
                fetchers[index.name] = try SourceFieldFetcher(
                    fields: request.fields,
                    storedFields: storedFieldNames,
                    mappings: index.metadata.mappings
                )
            }
        }
        let hits = outcome.hits.map { hit in
            var parsed: JSON?
            if let stored = hit.stored, wantsSource || fetchers[hit.index]?.isEmpty == false {
                if let sourceFilter, fetchers[hit.index]?.isEmpty ?? true {
                    // Only the source's filtered members are wanted: the rest is skipped, not built.
                    parsed = (try? JSON.parse(stored.source, choosing: sourceFilter.choice)) ?? .object([:])
                } else {
                    parsed = (try? JSON.parse(stored.source)) ?? .object([:])
                }
            }
            var fields = hit.docValueFields ?? [:]
            if let fetcher = fetchers[hit.index], let parsed {
                for (name, values) in fetcher.fetch(parsed) where fields[name] == nil { fields[name] = values }
            }
            return SearchResults.Hit(
                index: hit.index,
                id: request.storedFields == StoredFieldsRequest.none ? nil : hit.stored?.id ?? "",
                score: hit.score,
                version: request.version ? hit.stored?.version ?? 1 : nil,
                seqNo: request.seqNoPrimaryTerm ? hit.stored?.seqNo ?? 0 : nil,
                source: wantsSource ? parsed.map { sourceFilter?.apply($0) ?? $0 } : nil,
                sort: request.sort.isEmpty
                    ? nil : hit.sortValues.enumerated().map { executor.json($1, field: $0, reader: mappings) },
                fields: fields.isEmpty ? nil : fields,
                explanation: request.explain ? .some(Self.explanation(score: hit.score)) : .none
            )
        }
        let results = SearchResults(
            hits: hits,
            total: outcome.total,
            totalTracking: request.trackTotalHits,
            maxScore: outcome.maxScore,
            took: Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000),
            shards: indices.count,
            terminatedEarly: outcome.terminatedEarly,
            aggregations: outcome.aggregations
        )
        let end = outcome.hits.last.map {
            SearchCursor(values: $0.sortValues, indexPosition: $0.indexPosition, doc: $0.doc)
        }
        return (results, end)
    }

    /// A hit's `_explanation`: its score, without Lucene's breakdown of term statistics, which Quarry's scoring
    /// does not keep per clause.
    private static func explanation(score: Double?) -> JSON {
        [
            "value": .double(Double(Float(score ?? 0))),
            "description": "score of the query (Quarry does not break scores down by clause)",
            "details": [],
        ]
    }

    /// Counts the documents matching `query`.
    public func count(_ expression: String, query: Query, options: IndicesOptions = .search) throws(StoreError) -> Int {
        var request = SearchRequest()
        request.query = query
        request.size = 0
        request.trackTotalHits = .exact
        let names = try resolve(expression, options: options)
        do {
            return try SearchExecutor(request: request, now: Int64(Date().timeIntervalSince1970 * 1000))
                .run(openIndices(names)).total
        } catch let error as StoreError {
            throw error
        } catch {
            throw .internalFailure("count failed: \(error)")
        }
    }

    /// Per-index numbers for `_cat/indices` and `quarry index list`.
    public struct IndexSummary: Sendable {
        public var name: String
        public var uuid: String
        public var documentCount: Int
        /// Replaced or deleted documents whose postings are still in segments.
        public var deletedCount: Int
        public var sizeInBytes: Int64
        public var creationDate: Int64
    }

    public func summaries(_ expression: String = "_all") throws(StoreError) -> [IndexSummary] {
        openIndices(try resolve(expression, options: .search)).map {
            IndexSummary(
                name: $0.name,
                uuid: $0.metadata.uuid,
                documentCount: $0.documentCount,
                deletedCount: $0.deletedCount,
                sizeInBytes: $0.sizeInBytes,
                creationDate: $0.metadata.creationDate
            )
        }
    }
}

private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}

extension NSLock {
    /// `withLock` that keeps the closure's typed error.
    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
