import Foundation
import QuarryCore
import QuarryElastic

/// Reads every hit of `index` through QuarryElastic's iterator over HTTP (bench/run.sh iterate), with the
/// `Authorization` value in `ES_AUTHORIZATION`; prints hits/s and the process's peak RSS, beside the Python client's
/// figures from bench/http_iterate.py in the same run.
func runIterateBenchmark(url: String, index: String, pageSize: Int) async throws {
    let client = ElasticClient(
        configuration: .init(nodes: [url], requestTimeout: .seconds(600)),
        authorization: ProcessInfo.processInfo.environment["ES_AUTHORIZATION"],
        httpClient: ElasticClient.sharedHTTPClient
    )
    let start = ContinuousClock.now
    var count = 0
    var iterator = client.hits(index: index, pageSize: pageSize).makeAsyncIterator()
    while try await iterator.next() != nil { count += 1 }
    let seconds =
        Double((ContinuousClock.now - start).components.attoseconds) / 1e18
        + Double((ContinuousClock.now - start).components.seconds)
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let peak = status.split(separator: "\n").first { $0.hasPrefix("VmHWM") } ?? "VmHWM: ?"
    print(
        String(
            format: "QuarryElastic hits (%@): %d hits in %.2f s, %.0f hits/s, ",
            iterator.pagingMethod?.rawValue ?? "?",
            count,
            seconds,
            Double(count) / seconds
        )
            + peak.replacingOccurrences(of: "\t", with: " ")
    )
}
