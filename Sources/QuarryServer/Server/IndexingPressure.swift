import QuarryCore
import QuarryElasticsearchAPI
import Synchronization

/// Bounds the bytes of request bodies being worked on at once, as Elasticsearch's indexing pressure does: memory
/// stays bounded under any load, and a request past the limit is refused at once with 429 (clients retry it)
/// instead of being queued.
final class IndexingPressure: Sendable {
    let limit: Int
    private let inFlight = Mutex(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Reserves `bytes`, or returns false (reserving nothing) when they would take the total past the limit. A
    /// single request larger than the limit is still admitted when nothing else is in flight, so that any request
    /// within `http.max_content_length` can succeed on an idle server. Every reservation is given back with
    /// ``release(_:)``.
    func reserve(_ bytes: Int) -> Bool {
        inFlight.withLock { current -> Bool in
            guard current == 0 || current + bytes <= limit else { return false }
            current += bytes
            return true
        }
    }

    func release(_ bytes: Int) {
        inFlight.withLock { $0 -= bytes }
    }

    /// Bytes in flight now.
    var current: Int { inFlight.withLock { $0 } }

    /// Elasticsearch's error for a refused request.
    func rejection(_ bytes: Int) -> ESResponse {
        let reason =
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=\(current), "
            + "replica_bytes=0, all_bytes=\(current), coordinating_operation_bytes=\(bytes), "
            + "max_coordinating_and_primary_bytes=\(limit)]"
        let cause: JSON = ["type": "es_rejected_execution_exception", "reason": .string(reason)]
        return ESResponse(
            status: 429,
            json: [
                "error": ["root_cause": [cause], "type": "es_rejected_execution_exception", "reason": .string(reason)],
                "status": 429,
            ]
        )
    }
}
