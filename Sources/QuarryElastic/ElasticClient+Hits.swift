public import QuarryCore

extension ElasticClient {
    /// How ``hits(index:query:sort:pageSize:keepAlive:)`` pages.
    public enum PagingMethod: String, Sendable {
        /// Point in time with `search_after` and the `_shard_doc` tiebreak: Elasticsearch 7.10+, OpenSearch 2.4+.
        case pointInTime
        /// `search_after` with `_doc` as the tiebreak, on the live index.
        case searchAfter
        /// The scroll API, for clusters without point in time.
        case scroll
    }

    /// Every hit of `query` on `index`, page by page: no 10,000 cap, and memory bounded by one page.
    ///
    /// The method is chosen from `GET /`: point in time where the cluster has it (and answers `_pit`), else
    /// `search_after`, else scroll on older clusters. The point in time or scroll is closed when the sequence ends or
    /// fails; one abandoned part way expires after `keepAlive`.
    public func hits(
        index: String,
        query: JSON = ["match_all": [:]],
        sort: [JSON] = [],
        pageSize: Int = 1_000,
        keepAlive: String = "1m"
    ) -> Hits {
        Hits(client: self, index: index, query: query, sort: sort, pageSize: max(1, pageSize), keepAlive: keepAlive)
    }

    /// The hits of a query, as an async sequence of `_source`-bearing hit objects.
    public struct Hits: AsyncSequence, Sendable {
        public typealias Element = JSON
        let client: ElasticClient
        let index: String
        let query: JSON
        let sort: [JSON]
        let pageSize: Int
        let keepAlive: String

        public func makeAsyncIterator() -> Iterator {
            Iterator(hits: self)
        }

        public struct Iterator: AsyncIteratorProtocol {
            let hits: Hits
            var page: [JSON] = []
            var position = 0
            var method: PagingMethod?
            var pointInTime: String?
            var scrollID: String?
            var after: JSON?
            var finished = false
            /// The method in use, once the first page is read.
            public var pagingMethod: PagingMethod? { method }

            init(hits: Hits) { self.hits = hits }

            public mutating func next() async throws(ElasticError) -> JSON? {
                if position < page.count {
                    position += 1
                    return page[position - 1]
                }
                guard !finished else {
                    await close()
                    return nil
                }
                do {
                    try await fetch()
                } catch {
                    await close()
                    throw error
                }
                if page.isEmpty {
                    await close()
                    return nil
                }
                position = 1
                return page[0]
            }

            private mutating func fetch() async throws(ElasticError) {
                if method == nil { try await start() }
                let client = hits.client
                var response: JSON
                switch method! {
                case .pointInTime:
                    var body = baseBody(tiebreak: ["_shard_doc": "asc"])
                    body["pit"] = ["id": .string(pointInTime ?? ""), "keep_alive": .string(hits.keepAlive)]
                    if let after { body["search_after"] = after }
                    response = try await client.perform(.post, "/_search", body: .object(body))
                    if let id = response["pit_id"]?.stringValue { pointInTime = id }
                case .searchAfter:
                    var body = baseBody(tiebreak: "_doc")
                    if let after { body["search_after"] = after }
                    response = try await client.search(index: hits.index, body: .object(body))
                case .scroll:
                    if let scrollID {
                        response = try await client.perform(
                            .post,
                            "/_search/scroll",
                            body: ["scroll": .string(hits.keepAlive), "scroll_id": .string(scrollID)]
                        )
                    } else {
                        var body = baseBody(tiebreak: nil)
                        body["sort"] = .array(hits.sort.isEmpty ? ["_doc"] : hits.sort)
                        response = try await client.perform(
                            .post,
                            "/\(ElasticClient.encode(hits.index))/_search?scroll=\(hits.keepAlive)",
                            body: .object(body)
                        )
                    }
                    scrollID = response["_scroll_id"]?.stringValue ?? scrollID
                }
                page = response["hits"]?["hits"]?.arrayValue ?? []
                position = 0
                after = page.last?["sort"]
                if page.count < hits.pageSize, method != .scroll { finished = true }
            }

            private func baseBody(tiebreak: JSON?) -> JSONObject {
                var sort = hits.sort
                if let tiebreak { sort.append(tiebreak) }
                return [
                    "size": .int(Int64(hits.pageSize)), "query": hits.query, "sort": .array(sort),
                    "track_total_hits": false,
                ]
            }

            /// Chooses the method, opening a point in time where the cluster has one.
            private mutating func start() async throws(ElasticError) {
                // A key without the `monitor` cluster privilege may not read `GET /`: then point in time is tried.
                var hasPointInTime = true
                do {
                    hasPointInTime = try await hits.client.info().hasPointInTime
                } catch {
                    guard error.status == 403 else { throw error }
                }
                guard hasPointInTime else {
                    method = .scroll
                    return
                }
                let path = "/\(ElasticClient.encode(hits.index))/_pit?keep_alive=\(hits.keepAlive)"
                do {
                    let opened = try await hits.client.perform(.post, path, retry: true)
                    pointInTime = opened["id"]?.stringValue
                    method = pointInTime == nil ? .searchAfter : .pointInTime
                } catch {
                    // A cluster that says it has point in time but does not serve it (a proxy, a compatible
                    // server): search_after on the live index.
                    guard error.code == .rejected, let status = error.status,
                        status == 400 || status == 404 || status == 405
                    else {
                        throw error
                    }
                    method = .searchAfter
                }
            }

            /// Closes the point in time or scroll (best effort: it expires anyway).
            private mutating func close() async {
                finished = true
                if let pointInTime {
                    _ = try? await hits.client.perform(
                        .delete,
                        "/_pit",
                        body: ["id": .string(pointInTime)],
                        retry: false
                    )
                    self.pointInTime = nil
                }
                if let scrollID {
                    _ = try? await hits.client.perform(
                        .delete,
                        "/_search/scroll",
                        body: ["scroll_id": [.string(scrollID)]],
                        retry: false
                    )
                    self.scrollID = nil
                }
            }
        }
    }
}
