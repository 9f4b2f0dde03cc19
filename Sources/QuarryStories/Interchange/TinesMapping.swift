import QuarryCore

/// Tines' agent types (2020–2021) and their Quarry equivalents. Options keep their names: Quarry's agents were
/// modelled on Tines', so a Tines option either means the same here or is named in ``unsupportedOptions``.
public enum TinesMapping {
    /// Tines type → Quarry type.
    public static let types: [String: String] = [
        "Agents::WebhookAgent": "webhook",
        "Agents::HTTPRequestAgent": "http_request",
        "Agents::TriggerAgent": "trigger",
        "Agents::EventTransformationAgent": "transform",
        "Agents::EmailAgent": "email",
        "Agents::SendToStoryAgent": "send_to_story",
    ]

    /// The options a Tines email has: Tines sends mail itself, so on import the SMTP options are added (from the
    /// `smtp` resource and `smtp_password` credential, as the reference story does), and dropped on export.
    static let emailOptions = ["recipients", "subject", "body", "reply_to", "sender_name"]

    /// Transform modes Tines has and Quarry does not.
    static let unsupportedModes: Set = ["throttle", "automatic"]

    static func agents(
        _ agent: JSON,
        type tinesType: String,
        location: String,
        builder: inout StoryBuilder
    ) -> [DraftAgent] {
        let mode = agent["options"]?["mode"]?.stringValue ?? "message_only"
        guard let type = types[tinesType], !(type == "transform" && unsupportedModes.contains(mode)) else {
            return [DraftAgent.unsupported(agent, type: tinesType, from: "Tines")]
        }
        var options = agent["options"]?.objectValue ?? [:]
        var draft = DraftAgent(name: agent["name"]?.stringValue ?? "", type: type, options: [:])
        switch type {
        case "email":
            options = emailWithSMTP(options)
        case "http_request":
            // Tines' request timeout (seconds) is the agent's attempt timeout here.
            if let timeout = options.removeValue(forKey: "timeout") {
                draft.timeout = timeout.stringValue.flatMap { Int64($0) }.map(JSON.int) ?? timeout
            }
        default: break
        }
        draft.options = builder.coerced(options, type: type)
        draft.disabled = agent["disabled"]?.boolValue ?? (agent["disabled"]?.stringValue == "true")
        draft.keepEventsFor = keepEventsFor(agent["keep_events_for"])
        draft.schedule = schedule(agent["schedule"])
        return [draft]
    }

    /// Quarry's email options for a Tines email: the SMTP server from the `smtp` resource.
    static func emailWithSMTP(_ options: JSONObject) -> JSONObject {
        var result = options
        let sender = result.removeValue(forKey: "sender_name")?.stringValue
        let address = "{{ .RESOURCE.smtp.from | default: 'quarry@localhost' }}"
        result["from"] = .string(sender.map { "\($0) <\(address)>" } ?? address)
        result["smtp_host"] = "{{ .RESOURCE.smtp.host }}"
        result["smtp_port"] = "{{ .RESOURCE.smtp.port | default: 587 }}"
        result["smtp_security"] = "{{ .RESOURCE.smtp.security | default: 'starttls' }}"
        result["smtp_username"] = "{{ .RESOURCE.smtp.username }}"
        result["smtp_password"] = "{% if .RESOURCE.smtp.username %}{% credential smtp_password %}{% endif %}"
        return result
    }

    /// The inverse of ``emailWithSMTP(_:)``: Tines' email options.
    static func emailWithoutSMTP(_ options: JSONObject) -> JSONObject {
        var result = JSONObject()
        for (key, value) in options where emailOptions.contains(key) { result[key] = value }
        if let from = options["from"]?.stringValue,
            let match = from.wholeMatch(of: /(.+) <\{\{ .RESOURCE.smtp.from.*\}\}>/)
        {
            result["sender_name"] = .string(String(match.output.1))
        }
        return result
    }

    /// Seconds; 0 (Tines' "forever") is no limit.
    static func keepEventsFor(_ value: JSON?) -> JSON? {
        guard let value else { return nil }
        let seconds = value.intValue ?? value.stringValue.flatMap { Int64($0) }
        guard let seconds, seconds > 0 else { return nil }
        return .int(seconds)
    }

    /// Tines' `[{cron, timezone}]` (or null).
    static func schedule(_ value: JSON?) -> JSON? {
        let schedules: [(String, String)] = (value?.arrayValue ?? []).compactMap { item in
            guard let cron = item["cron"]?.stringValue else { return nil }
            return (cron, item["timezone"]?.stringValue ?? "UTC")
        }
        return StoryImport.schedule(schedules)
    }

    /// Tines' form → Quarry's, when it has fields: `world` visibility is a public form, the rest private.
    static func form(_ value: JSON?, agentName: (String) -> String?) -> JSON? {
        guard let value, let fields = value["fields"]?.arrayValue, !fields.isEmpty else { return nil }
        var form = JSONObject()
        form["title"] = .string(value["name"]?.stringValue ?? "")
        if let description = value["description"]?.stringValue, !description.isEmpty {
            form["description"] = .string(description)
        }
        form["visibility"] = .string(value["visibility"]?.stringValue == "world" ? "public" : "private")
        form["fields"] = .array(
            fields.map { field in
                let label = field["name"]?.stringValue ?? ""
                var result: JSONObject = [
                    "name": .string(Story.snakeCase(label)), "label": .string(label),
                    "type": .string(fieldType(field["field_type"]?.stringValue ?? field["type"]?.stringValue)),
                ]
                if field["required"]?.boolValue == true { result["required"] = true }
                if let options = field["options"]?.arrayValue, !options.isEmpty { result["options"] = .array(options) }
                return .object(result)
            }
        )
        return .object(form)
    }

    /// Tines' field types by the closest Quarry form field.
    static func fieldType(_ type: String?) -> String {
        switch type?.uppercased() ?? "" {
        case "LONG_TEXT", "TEXTAREA": "textarea"
        case "NUMBER": "number"
        case "EMAIL": "email"
        case "OPTION", "DROPDOWN", "SELECT", "MULTI_SELECT": "select"
        case "BOOLEAN", "CHECKBOX": "boolean"
        default: "text"
        }
    }

    /// Quarry's form field types as Tines names them (``fieldType(_:)`` backwards).
    static func tinesFieldType(_ type: String) -> String {
        switch type {
        case "textarea": "LONG_TEXT"
        case "number": "NUMBER"
        case "email": "EMAIL"
        case "select": "OPTION"
        case "boolean": "BOOLEAN"
        default: "SHORT_TEXT"
        }
    }
}
