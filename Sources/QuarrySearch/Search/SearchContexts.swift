import Foundation

/// The scrolls and points in time open on a store. A scroll is the search, the indices it reads (in the order of its
/// first page), how many document numbers each had when it was opened, where the last page ended, and when it
/// expires; a point in time is the indices and their numbers, and its expiry.
///
/// A page is the next `size` hits after where the last one ended in the search's order (its sort, then index, then
/// document number), so a scroll holds a few numbers and no hits, however many it will return: memory stays flat.
/// Documents written after the scroll was opened are not seen (their numbers are past the snapshot); a document
/// updated or deleted meanwhile is seen as it is now, or not at all (Elasticsearch would keep the old version).
final class SearchContexts: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    struct Context {
        var names: [String]
        var request: SearchRequest
        var total: Int
        var expires: Date
        var owner: String?
    }

    /// Elasticsearch's `search.max_open_scroll_context`.
    static let limit = 500
    /// Elasticsearch's `search.max_keep_alive`: 24 hours.
    static let maximumKeepAlive: Int64 = 24 * 3_600_000

    struct PointInTime {
        var names: [String]
        var snapshot: [String: Int]
        var expires: Date
        var owner: String?
        var created = Date()
        /// The keep-alive last asked for, in milliseconds.
        var keepAlive: Int64
    }

    /// The most points in time open at once (Elasticsearch sets none; memory here is a few numbers each).
    static let pointLimit = 10_000

    private let lock = NSLock()
    private var contexts: [String: Context] = [:]
    private var points: [String: PointInTime] = [:]

    /// Drops expired contexts; the caller holds the lock.
    private func sweep(now: Date) {
        contexts = contexts.filter { $0.value.expires > now }
        points = points.filter { $0.value.expires > now }
    }

    /// 160 random bits in URL-safe base64 without padding, as Elasticsearch's ids are: they travel in paths.
    static func newID() -> String {
        Data((0..<20).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Whether `id` could be one of ``newID()``'s (else Elasticsearch's "Cannot parse scroll id").
    static func isWellFormed(_ id: String) -> Bool {
        !id.isEmpty && id.allSatisfy(idCharacters.contains)
    }

    private static let idCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    func add(_ point: PointInTime) throws(StoreError) -> String {
        let id = Self.newID()
        let added = lock.withLock { () -> Bool in
            sweep(now: Date())
            guard points.count < Self.pointLimit else { return false }
            points[id] = point
            return true
        }
        guard added else {
            throw StoreError(
                type: "exception",
                reason: "Trying to open too many points in time. Must be less than or equal to: [\(Self.pointLimit)].",
                status: 500
            )
        }
        return id
    }

    /// The point in time `id` of `owner`, its expiry moved to `keepAlive` milliseconds from now when given.
    func point(_ id: String, owner: String?, keepAlive: Int64?) -> PointInTime? {
        lock.withLock {
            sweep(now: Date())
            guard var point = points[id], point.owner == owner else { return nil }
            if let keepAlive {
                point.expires = Date().addingTimeInterval(Double(keepAlive) / 1000)
                point.keepAlive = keepAlive
                points[id] = point
            }
            return point
        }
    }

    func points(owner: String?) -> [PointInTimeSummary] {
        lock.withLock {
            sweep(now: Date())
            return points.filter { $0.value.owner == owner }.sorted { $0.key < $1.key }.map { id, point in
                PointInTimeSummary(
                    id: id,
                    creationTime: Int64(point.created.timeIntervalSince1970 * 1000),
                    keepAlive: point.keepAlive
                )
            }
        }
    }

    /// Closes points in time `ids` of `owner`; returns how many were open.
    func removePoints(_ ids: [String], owner: String?) -> Int {
        lock.withLock {
            sweep(now: Date())
            var freed = 0
            for id in ids {
                guard let point = points[id], point.owner == owner else { continue }
                points[id] = nil
                freed += 1
            }
            return freed
        }
    }

    func add(_ context: Context) throws(StoreError) -> String {
        let id = Self.newID()
        let added = lock.withLock { () -> Bool in
            sweep(now: Date())
            guard contexts.count < Self.limit else { return false }
            contexts[id] = context
            return true
        }
        guard added else {
            throw StoreError(
                type: "exception",
                reason: "Trying to create too many scroll contexts. Must be less than or equal to: [\(Self.limit)]. "
                    + "This limit can be set by changing the [search.max_open_scroll_context] setting.",
                status: 500
            )
        }
        return id
    }

    /// The context of `id` for `owner`, or nil (unknown, expired, or another user's: Elasticsearch answers all
    /// three the same).
    func context(_ id: String, owner: String?) -> Context? {
        lock.withLock {
            sweep(now: Date())
            guard let context = contexts[id], context.owner == owner else { return nil }
            return context
        }
    }

    func update(_ id: String, _ context: Context) {
        lock.withLock { contexts[id] = context }
    }

    /// Removes `ids` (every context of `owner` when nil); returns how many were open.
    func remove(_ ids: [String]?, owner: String?) -> Int {
        lock.withLock {
            sweep(now: Date())
            let doomed = ids.map { Set($0) }
            let before = contexts.count
            contexts = contexts.filter { id, context in
                context.owner != owner || !(doomed?.contains(id) ?? true)
            }
            return before - contexts.count
        }
    }
}

extension EmbeddedStore {
    /// Opens a scroll over `expression` with `request` (its `size` is the page size) and returns its first page,
    /// whose ``SearchResults/scrollID`` continues it with ``scroll(_:keepAlive:owner:)`` for `keepAlive`
    /// milliseconds after each page. `owner` is the caller (nil in process): only it may continue or clear it.
    public func openScroll(
        _ expression: String,
        _ request: SearchRequest,
        options: IndicesOptions = .search,
        keepAlive: Int64,
        owner: String?
    ) throws(StoreError) -> SearchResults {
        try Self.validateScroll(request, keepAlive: keepAlive)
        let names = try resolve(expression, options: options)
        let indices = openIndices(names)
        for index in indices where request.size > index.metadata.maxResultWindow {
            throw .illegalArgument(
                "Batch size is too large, size must be less than or equal to: [\(index.metadata.maxResultWindow)] but "
                    + "was [\(request.size)]. Scroll batch sizes cost as much memory as result windows so they are "
                    + "controlled by the [index.max_result_window] index level setting."
            )
        }
        var scrolled = request
        if case .upTo = scrolled.trackTotalHits { scrolled.trackTotalHits = .exact }
        scrolled.snapshot = try Self.snapshot(indices)
        var (results, end) = try run(scrolled, on: indices)
        scrolled.cursor = end
        let id = try searchContexts.add(
            .init(
                names: indices.map(\.name),
                request: scrolled,
                total: results.total,
                expires: Date().addingTimeInterval(Double(keepAlive) / 1000),
                owner: owner
            )
        )
        results.scrollID = id
        return results
    }

    /// The next page of scroll `id`; `keepAlive` (milliseconds) renews it, else it keeps its expiry.
    public func scroll(_ id: String, keepAlive: Int64?, owner: String?) throws(StoreError) -> SearchResults {
        if let keepAlive { try Self.validateKeepAlive(keepAlive) }
        guard SearchContexts.isWellFormed(id) else { throw .illegalArgument("Cannot parse scroll id") }
        guard var context = searchContexts.context(id, owner: owner) else { throw Self.scrollMissing(id) }
        let indices = openIndices(context.names)
        guard indices.count == context.names.count else { throw Self.scrollMissing(id) }
        var (results, end) = try run(context.request, on: indices)
        if let end { context.request.cursor = end }
        if let keepAlive { context.expires = Date().addingTimeInterval(Double(keepAlive) / 1000) }
        searchContexts.update(id, context)
        results.total = context.total
        results.scrollID = id
        return results
    }

    /// Opens a point in time over `expression` for `keepAlive` milliseconds: the indices and the documents they hold
    /// now, searched later with ``search(pointInTime:_:owner:)``. Returns its id and how many indices it holds.
    public func openPointInTime(
        _ expression: String,
        options: IndicesOptions = .search,
        keepAlive: Int64,
        owner: String?
    ) throws(StoreError) -> (id: String, indices: Int) {
        try Self.validateKeepAlive(keepAlive)
        let indices = openIndices(try resolve(expression, options: options))
        let id = try searchContexts.add(
            SearchContexts.PointInTime(
                names: indices.map(\.name),
                snapshot: try Self.snapshot(indices),
                expires: Date().addingTimeInterval(Double(keepAlive) / 1000),
                owner: owner,
                keepAlive: keepAlive
            )
        )
        return (id, indices.count)
    }

    /// Searches point in time `id` (``SearchRequest/pointInTime``, whose keep-alive renews it): its indices as they
    /// were when it was opened. A sort gets `_shard_doc` as its last key unless it has it, as in Elasticsearch, so
    /// that `search_after` pages through every hit once.
    public func search(
        pointInTime id: String,
        _ request: SearchRequest,
        owner: String?
    ) throws(StoreError)
        -> SearchResults
    {
        let keepAlive = request.pointInTime?.keepAlive
        if let keepAlive { try Self.validateKeepAlive(keepAlive) }
        guard let point = searchContexts.point(id, owner: owner, keepAlive: keepAlive) else {
            throw Self.scrollMissing(id)
        }
        let indices = openIndices(point.names)
        guard indices.count == point.names.count else { throw Self.scrollMissing(id) }
        var search = request
        search.snapshot = point.snapshot
        if !search.sort.isEmpty, !search.sort.contains(where: { $0.target == .shardDoc }) {
            search.sort.append(SortField.shardDocAscending)
        }
        var (results, _) = try run(search, on: indices)
        results.pointInTimeID = id
        return results
    }

    /// The ids of `owner`'s open points in time.
    /// The points in time `owner` has open (OpenSearch lists them).
    public func pointsInTime(owner: String?) -> [PointInTimeSummary] {
        searchContexts.points(owner: owner)
    }

    /// Closes points in time; returns how many were open.
    public func closePointsInTime(_ ids: [String], owner: String?) -> Int {
        searchContexts.removePoints(ids, owner: owner)
    }

    /// How many document numbers each index has now: what a scroll or a point in time sees.
    static func snapshot(_ indices: [StoredIndex]) throws(StoreError) -> [String: Int] {
        var snapshot: [String: Int] = [:]
        for index in indices {
            do {
                snapshot[index.name] = try index.withReader { $0.capacity }
            } catch {
                throw .internalFailure("cannot open \(index.name): \(error)")
            }
        }
        return snapshot
    }

    /// Clears scrolls (every one of `owner` when `ids` is nil); returns how many were open.
    public func clearScrolls(_ ids: [String]?, owner: String?) -> Int {
        searchContexts.remove(ids, owner: owner)
    }

    static func scrollMissing(_ id: String) -> StoreError {
        var missing = StoreError(
            type: "search_context_missing_exception",
            reason: "No search context found for id [\(id)]",
            status: 404
        )
        missing = .searchPhase(missing, index: "")
        return missing
    }

    static func validateKeepAlive(_ keepAlive: Int64) throws(StoreError) {
        if keepAlive > SearchContexts.maximumKeepAlive || keepAlive < 0 {
            throw .illegalArgument(
                "Keep alive for request (\(ReadableKeepAlive.text(keepAlive))) is too large. It must be less than (1d). "
                    + "This limit can be set by changing the [search.max_keep_alive] cluster level setting."
            )
        }
    }

    static func validateScroll(_ request: SearchRequest, keepAlive: Int64) throws(StoreError) {
        try validateKeepAlive(keepAlive)
        var problems: [String] = []
        if request.from > 0 { problems.append("using [from] is not allowed in a scroll context") }
        if request.size == 0 { problems.append("[size] cannot be [0] in a scroll context") }
        if case .disabled = request.trackTotalHits {
            problems.append("disabling [track_total_hits] is not allowed in a scroll context")
        }
        guard problems.isEmpty else {
            let listed = problems.enumerated().map { "\($0.offset + 1): \($0.element);" }.joined(separator: " ")
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: \(listed)",
                status: 400
            )
        }
    }
}

/// A keep-alive as Elasticsearch prints a time value in its messages (`2d`, `90m`, `1500ms`).
enum ReadableKeepAlive {
    static func text(_ milliseconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)]
        where milliseconds >= size && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}

/// An open point in time, as OpenSearch's `GET /_search/point_in_time/_all` lists it.
public struct PointInTimeSummary: Sendable {
    public var id: String
    /// Epoch milliseconds.
    public var creationTime: Int64
    /// Milliseconds.
    public var keepAlive: Int64
}
