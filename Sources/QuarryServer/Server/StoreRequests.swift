import NIOCore
import NIOPosix
import QuarryElasticsearchAPI

/// Runs Elasticsearch API requests against the embedded store, whose work is blocking SQLite and CPU, on a thread
/// pool of their own: never on Swift's cooperative pool, nor on NIO's shared pool, where the story engine's database
/// reads run. Sharing that pool, two long requests (a bulk load on two connections, a search over millions) held
/// both of its threads and every run page, webhook and agent's read queued behind them; a CI run's story reads came
/// more than 30 s late while other tests' in-process servers answered on it. Elasticsearch keeps its write and search
/// pools apart from the rest for the same reason.
enum StoreRequests {
    /// One thread a core, as NIO's shared pool has, so clients see the same concurrency as before.
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: System.coreCount)
        pool.start()
        return pool
    }()

    static func handle(_ request: ESRequest, with api: ElasticsearchAPI) async throws -> ESResponse {
        try await pool.runIfActive { api.handle(request) }
    }
}
