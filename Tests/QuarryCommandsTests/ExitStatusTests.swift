import Foundation
import QuarryTesting
import Testing

/// Exit statuses as the commands' help documents them: 64 with the usage for usage errors only, 1 with the error
/// alone when the command ran and failed.
struct ExitStatusTests {
    @Test func runtimeFailuresExitOneWithoutTheUsage() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            for arguments in [
                ["runs", "show", "nope"], ["resources", "show", "nope"], ["credentials", "remove", "nope"],
                ["bulk", directory.appendingPathComponent("missing.ndjson").path],
            ] {
                let result = try QuarryCommand.run(arguments + ["--data", data])
                #expect(result.status == 1, "\(arguments): \(result.error)")
                #expect(result.error.hasPrefix("Error: "), "\(arguments): \(result.error)")
                #expect(!result.error.contains("Usage:"), "\(arguments): \(result.error)")
            }
            let usage = try QuarryCommand.run(["runs", "show"])
            #expect(usage.status == 64)
            #expect(usage.error.contains("Usage:"))
        }
    }

    /// `quarry index delete` by pattern needs `--yes`, as Elasticsearch 8's `action.destructive_requires_name`.
    @Test func deletingByPatternNeedsYes() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            for name in ["logs-a", "logs-b"] {
                #expect(try QuarryCommand.run(["index", "create", name, "--data", data]).status == 0)
            }
            let refused = try QuarryCommand.run(["index", "delete", "logs-*", "--data", data])
            #expect(refused.status == 1)
            #expect(refused.error.contains("--yes"))
            #expect(try QuarryCommand.run(["index", "list", "--data", data]).text.contains("logs-b"))
            #expect(try QuarryCommand.run(["index", "delete", "logs-a", "--data", data]).status == 0)
            let all = try QuarryCommand.run(["index", "delete", "*", "--yes", "--data", data])
            #expect(all.status == 0)
            #expect(all.text.contains("logs-b"))
        }
    }
}
