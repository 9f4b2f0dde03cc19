import Foundation
import QuarryTesting
import Testing

/// Runs Elastic's own YAML REST tests (the clients' shared suite, in `../shared/corpus/es-yaml`) against Quarry's
/// Elasticsearch API over HTTP, one fresh server per file.
@Suite(.serialized, .mayBlock)
struct ElasticsearchYAMLTests {
    /// The files whose APIs the embedded store covers, run authenticated as `elastic` (all of the corpus's but the
    /// serverless-only one).
    static let files = [
        "bulk/10_basic.yml", "cluster/health.yml", "count/10_basic.yml", "create/10_basic.yml", "delete/10_basic.yml",
        "delete_by_query/10_stack.yml",
        "field_caps/10_basic.yml",
        "exists/10_basic.yml", "get/10_basic.yml", "get.yml", "get_source/10_basic.yml", "index/10_with_id.yml",
        "index/20_without_id.yml", "indices/alias.yml", "indices/create.yml", "indices/delete.yml",
        "indices/exists.yml", "indices/get.yml", "indices/index_template.yml", "indices/mapping.yml",
        "indices/refresh.yml", "indices/resolve.yml", "info_stack.yml", "mget.yml", "msearch.yml", "ping/ping.yml",
        "point_in_time/10_basic.yml",
        "scroll/10_basic.yml", "search/10_basic.yml", "security/10_api_key_basic.yml", "security/20_authenticate.yml",
        "security/60_api_key_update.yml", "security/70_api_key_more.yml",
        "update/10_partial_update.yml",
    ]

    static var testsDirectory: URL? {
        ProjectPaths.corpus?.appendingPathComponent("es-yaml/clients-tests/tests")
    }

    @Test(
        "Elastic YAML REST test",
        .enabled(if: ProjectPaths.corpus != nil, Comment(rawValue: ProjectPaths.corpusMissing)),
        .timeLimit(.minutes(8)),
        arguments: files
    )
    func yamlFile(_ file: String) async throws {
        let directory = try #require(Self.testsDirectory)
        let contents = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        let suite = try YAMLTestFile(contents: contents)
        guard suite.requiresStack else { return }
        let endpointsText = try String(
            contentsOf: try #require(ProjectPaths.corpus).appendingPathComponent("es-api/ENDPOINTS.txt"),
            encoding: .utf8
        )
        let endpoints = EndpointTable(contents: endpointsText)
        try await withElasticsearchServer { client, _ in
            for test in suite.tests {
                var runner = YAMLRunner(client: client, endpoints: endpoints)
                do {
                    try await runner.run(suite.setup)
                    try await runner.run(test.steps)
                } catch {
                    Issue.record("\(file) › \(test.name): \(error)")
                }
                try await runner.run(suite.teardown)
            }
        }
    }
}
