import Foundation
import QuarryCore
import QuarryElastic
import QuarryStories

/// A story run by the `quarry serve` that holds the data directory, through its web API: one story database is run
/// by one engine, so `quarry story run` and `quarry hunt dns` hand the story to the server (it replaces the
/// server's story of that name, as the commands replace it in the data directory when nothing serves it), start the
/// run, wait for its end and read it back, to print it as they print a run of their own.
struct ServedStoryRun {
    var record: RunRecord
    var timeline: [TimelineEntry]
    var events: [EventRecord]

    /// Runs `text` (the story `story` was read from) with `payload` as its entry event.
    static func run(
        _ text: String,
        story: Story,
        payload: JSON,
        dryRun: Bool,
        on served: ServedDataDirectory
    ) async throws -> ServedStoryRun {
        let client = try served.webClient()
        printError("quarry serve (pid \(served.pid)) has this data directory: it runs the story (\(served.web ?? ""))")
        let key = Story.snakeCase(story.name)
        let run: JSON
        let events: JSON
        do throws(ElasticError) {
            let exists: Bool
            do throws(ElasticError) {
                _ = try await client.perform(.get, "/api/v1/stories/\(key)")
                exists = true
            } catch  where error.status == 404 {
                exists = false
            }
            _ = try await client.perform(
                exists ? .put : .post,
                exists ? "/api/v1/stories/\(key)" : "/api/v1/stories",
                text: text,
                contentType: "application/yaml"
            )
            let started = try await client.perform(
                .post,
                "/api/v1/stories/\(key)/runs" + (dryRun ? "?dry_run=true" : ""),
                body: payload
            )
            let guid = started["run"]?.stringValue ?? ""
            var current = try await client.perform(.get, "/api/v1/runs/\(guid)")
            while current["status"]?.stringValue == RunRecord.Status.running.rawValue {
                try? await Task.sleep(for: .milliseconds(200))
                current = try await client.perform(.get, "/api/v1/runs/\(guid)")
            }
            run = current
            events = try await client.perform(.get, "/api/v1/runs/\(guid)/events")
        } catch {
            throw CommandFailure("\(error.message) (through quarry serve, pid \(served.pid))")
        }
        guard let record = RunRecord(json: run) else {
            throw CommandFailure("quarry serve (pid \(served.pid)) answered an unreadable run: \(run.serialized())")
        }
        return ServedStoryRun(
            record: record,
            timeline: (run["timeline"]?.arrayValue ?? []).compactMap(TimelineEntry.init(json:)),
            events: (events["events"]?.arrayValue ?? []).compactMap { EventRecord(json: $0, run: record.guid) }
        )
    }
}
