import QuarryCore
import QuarryStories

/// What a dry run would have sent, as `quarry story run --dry-run` and `quarry runs show` print it: each request
/// with its method, URL, headers (secrets already replaced by the agent and the engine) and body, and each email
/// with its envelope, subject and text, read from the `dry_run` events the agents emitted.
enum DryRunReport {
    static func lines(for events: [EventRecord]) -> [String] {
        var lines: [String] = []
        for event in events where event.payload["dry_run"] == true {
            if let request = event.payload["request"] {
                lines.append("would send (\(event.agent)):")
                lines.append(
                    "  \(request["method"]?.stringValue ?? "?") \(request["url"]?.stringValue ?? "?")"
                )
                for (name, value) in request["headers"]?.objectValue ?? [:] {
                    lines.append("  \(name): \(value.stringValue ?? value.serialized())")
                }
                if let body = request["body"]?.stringValue {
                    lines.append("")
                    lines += indented(body)
                }
            } else if let message = event.payload["message"] {
                lines.append("would email (\(event.agent)):")
                lines.append("  From: \(message["from"]?.stringValue ?? "")")
                let recipients = message["recipients"]?.arrayValue?.compactMap(\.stringValue) ?? []
                lines.append("  To: \(recipients.joined(separator: ", "))")
                if let replyTo = message["reply_to"]?.stringValue { lines.append("  Reply-To: \(replyTo)") }
                lines.append("  Subject: \(message["subject"]?.stringValue ?? "")")
                let smtp = message["smtp"]
                var server =
                    "  via \(smtp?["host"]?.stringValue ?? "?"):\(smtp?["port"]?.intValue ?? 0) "
                    + "(\(smtp?["security"]?.stringValue ?? "?")"
                if let user = smtp?["username"]?.stringValue { server += ", user \(user)" }
                lines.append(server + ")")
                lines.append("")
                lines += indented(message["text"]?.stringValue ?? "")
            } else {
                lines.append("would run (\(event.agent)): \(event.payload.serialized())")
            }
            lines.append("")
        }
        return lines
    }

    private static func indented(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
    }
}
