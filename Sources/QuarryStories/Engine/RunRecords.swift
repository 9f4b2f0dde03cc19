public import QuarryCore

/// A run as the engine records it.
public struct RunRecord: Sendable {
    public enum Status: String, Sendable {
        case running
        /// An agent at the end of the story (one nothing receives from, or the story's exit agent) emitted.
        case succeeded
        /// An agent failed after its attempts.
        case failed
        /// The run ended before reaching the end of the story (a trigger did not match).
        case noMatch = "no_match"
    }

    public var guid: String
    public var story: String
    public var status: Status
    public var dryRun: Bool
    public var started: Double
    public var ended: Double?
    public var error: String?

    public init(
        guid: String,
        story: String,
        status: Status,
        dryRun: Bool,
        started: Double,
        ended: Double? = nil,
        error: String? = nil
    ) {
        self.guid = guid
        self.story = story
        self.status = status
        self.dryRun = dryRun
        self.started = started
        self.ended = ended
        self.error = error
    }

    public var json: JSON {
        var object: JSONObject = [
            "guid": .string(guid), "story": .string(story), "status": .string(status.rawValue),
            "dry_run": .bool(dryRun), "started": .string(isoTime(started)),
        ]
        if let ended { object["ended"] = .string(isoTime(ended)) }
        if let error { object["error"] = .string(error) }
        return .object(object)
    }
}

/// One step of a run's timeline: an agent handling one event (or one attempt at it).
public struct TimelineEntry: Sendable {
    public enum Outcome: String, Sendable {
        /// The agent emitted one or more events.
        case emitted
        /// The agent handled the event and emitted nothing (a trigger that did not match).
        case nothing
        /// The attempt failed and another is scheduled.
        case retrying
        /// The agent failed for good.
        case failed
    }

    public var agent: String
    public var event: Int64?
    public var attempt: Int
    public var started: Double
    public var ended: Double
    public var outcome: Outcome
    public var emitted: Int
    public var message: String?

    public init(
        agent: String,
        event: Int64?,
        attempt: Int,
        started: Double,
        ended: Double,
        outcome: Outcome,
        emitted: Int,
        message: String?
    ) {
        self.agent = agent
        self.event = event
        self.attempt = attempt
        self.started = started
        self.ended = ended
        self.outcome = outcome
        self.emitted = emitted
        self.message = message
    }

    public var json: JSON {
        var object: JSONObject = [
            "agent": .string(agent), "attempt": .int(Int64(attempt)),
            "started": .string(isoTime(started)),
            "duration_ms": .double(((ended - started) * 1_000_000).rounded() / 1_000),
            "outcome": .string(outcome.rawValue), "emitted": .int(Int64(emitted)),
        ]
        if let event { object["event"] = .int(event) }
        if let message { object["message"] = .string(message) }
        return .object(object)
    }
}

/// An event as stored: who emitted it, in which run, and its payload.
public struct EventRecord: Sendable {
    public var id: Int64
    public var agent: String
    public var run: String
    public var created: Double
    public var payload: JSON
    /// The event records an agent's failure rather than its output; it is not delivered.
    public var isError: Bool

    public init(id: Int64, agent: String, run: String, created: Double, payload: JSON, isError: Bool) {
        self.id = id
        self.agent = agent
        self.run = run
        self.created = created
        self.payload = payload
        self.isError = isError
    }

    /// How the CLI and the REST API print an event.
    public var json: JSON {
        [
            "id": .int(id), "agent": .string(agent), "created": .string(isoTime(created)), "error": .bool(isError),
            "payload": payload,
        ]
    }
}

/// Seconds since 1970 as ISO 8601 with milliseconds, UTC: how runs, timelines and reports print times.
func isoTime(_ seconds: Double) -> String {
    ISO8601.format(Int64((seconds * 1_000).rounded()))
}

/// Seconds since 1970 from ``isoTime(_:)``'s text.
private func seconds(fromISOTime json: JSON?) -> Double? {
    json?.stringValue.flatMap { ISO8601.parse($0) }.map { Double($0) / 1_000 }
}

// Reading back what `json` wrote: the commands run beside `quarry serve` get runs from its web API and print
// them as they print runs read from the store.
extension RunRecord {
    public init?(json: JSON) {
        guard let guid = json["guid"]?.stringValue, let story = json["story"]?.stringValue,
            let status = json["status"]?.stringValue.flatMap(Status.init(rawValue:)),
            let started = seconds(fromISOTime: json["started"])
        else { return nil }
        self.init(
            guid: guid,
            story: story,
            status: status,
            dryRun: json["dry_run"]?.boolValue ?? false,
            started: started,
            ended: seconds(fromISOTime: json["ended"]),
            error: json["error"]?.stringValue
        )
    }
}

extension TimelineEntry {
    public init?(json: JSON) {
        guard let agent = json["agent"]?.stringValue, let started = seconds(fromISOTime: json["started"]),
            let outcome = json["outcome"]?.stringValue.flatMap(Outcome.init(rawValue:))
        else { return nil }
        self.init(
            agent: agent,
            event: json["event"]?.intValue,
            attempt: Int(json["attempt"]?.intValue ?? 1),
            started: started,
            ended: started + (json["duration_ms"]?.doubleValue ?? 0) / 1_000,
            outcome: outcome,
            emitted: Int(json["emitted"]?.intValue ?? 0),
            message: json["message"]?.stringValue
        )
    }
}

extension EventRecord {
    /// - Parameter run: the run's guid (the event's JSON leaves it out).
    public init?(json: JSON, run: String) {
        guard let id = json["id"]?.intValue, let agent = json["agent"]?.stringValue, let payload = json["payload"]
        else { return nil }
        self.init(
            id: id,
            agent: agent,
            run: run,
            created: seconds(fromISOTime: json["created"]) ?? 0,
            payload: payload,
            isError: json["error"]?.boolValue ?? false
        )
    }
}
