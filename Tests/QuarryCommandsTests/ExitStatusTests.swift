import Foundation
import QuarryTesting
import Testing

/// Exit statuses as the commands' help documents them: 64 with the usage for usage errors only, 1 with the error
/// alone when the command ran and failed.
@Suite(.mayBlock)
struct ExitStatusTests {
    @Test func runtimeFailuresExitOneWithoutTheUsage() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            for arguments in [
                ["runs", "show", "nope"], ["resources", "show", "nope"], ["credentials", "remove", "nope"],
                ["bulk", directory.appendingPathComponent("missing.ndjson").path],
            ] {
                let result = try await QuarryCommand.run(arguments + ["--data", data])
                #expect(result.status == 1, "\(arguments): \(result.error)")
                #expect(result.error.hasPrefix("Error: "), "\(arguments): \(result.error)")
                #expect(!result.error.contains("Usage:"), "\(arguments): \(result.error)")
            }
            let usage = try await QuarryCommand.run(["runs", "show"])
            #expect(usage.status == 64)
            #expect(usage.error.contains("Usage:"))
        }
    }

    @Test func versionIsPrinted() async throws {
        let result = try await QuarryCommand.run(["--version"])
        #expect(result.status == 0)
        #expect(result.text.hasPrefix("quarry 0.") && result.text.contains("(Elasticsearch API 8."))
    }

    /// `quarry index delete` by pattern needs `--yes`, as Elasticsearch 8's `action.destructive_requires_name`.
    @Test func deletingByPatternNeedsYes() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            for name in ["logs-a", "logs-b"] {
                #expect(try await QuarryCommand.run(["index", "create", name, "--data", data]).status == 0)
            }
            let refused = try await QuarryCommand.run(["index", "delete", "logs-*", "--data", data])
            #expect(refused.status == 1)
            #expect(refused.error.contains("--yes"))
            #expect(try await QuarryCommand.run(["index", "list", "--data", data]).text.contains("logs-b"))
            #expect(try await QuarryCommand.run(["index", "delete", "logs-a", "--data", data]).status == 0)
            let all = try await QuarryCommand.run(["index", "delete", "*", "--yes", "--data", data])
            #expect(all.status == 0)
            #expect(all.text.contains("logs-b"))
        }
    }

    /// `quarry bulk` names the file's line of each failed item, and of a malformed request.
    @Test func bulkErrorsNameTheLineOfTheFile() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            let file = directory.appendingPathComponent("bad.ndjson")
            try """
            {"index":{"_index":"t","_id":"1"}}
            {"a":1}
            {"index":{"_index":"t","_id":"2"}}
            {"a":"x"}

            {"index":{"_index":"t","_id":"3"}}
            {"a":

            """.write(to: file, atomically: true, encoding: .utf8)
            let items = try await QuarryCommand.run(["bulk", file.path, "--data", data])
            #expect(items.status == 2)
            #expect(items.error.contains("line 3: 2: document_parsing_exception"), "\(items.error)")
            #expect(items.error.contains("line 6: 3: document_parsing_exception"), "\(items.error)")
            try "{\"index\":{\"_index\":\"t\"}}\n{\"a\":1}\n{\"nope\":{}}\n{\"a\":1}\n".write(
                to: file,
                atomically: true,
                encoding: .utf8
            )
            let malformed = try await QuarryCommand.run(["bulk", file.path, "--data", data])
            #expect(malformed.status == 1)
            #expect(malformed.error.contains("bulk request of lines 1–4 failed: Malformed action/metadata line [3]"))
        }
    }
}
