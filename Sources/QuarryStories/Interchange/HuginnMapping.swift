import Foundation
import QuarryCore

/// Huginn's agent types (scenario `schema_version` 1) and their Quarry equivalents. Huginn names options
/// differently from Tines and reads paths as JSONPath, not templates; a few agents become a short chain of Quarry
/// agents whose last keeps the Huginn agent's name (what receivers and templates refer to):
/// - `WebsiteAgent` (JSON): `Name (fetch)` (http_request) → `Name (each)` (explode the extracted values, zipped as
///   Huginn zips them) → `Name` (each element as the event); with `mode: on_change`, `Name (item)` and a
///   deduplicating `Name`;
/// - `TriggerAgent` without `keep_event`: `Name (rules)` → `Name` (the `message`, as Huginn emits it);
/// - `WebhookAgent` with a `payload_path`: `Name (received)` → `Name` (the value at the path).
/// A `SchedulerAgent` that runs agents becomes their `schedule`.
public enum HuginnMapping {
    public static let types: [String: String] = [
        "Agents::WebhookAgent": "webhook",
        "Agents::PostAgent": "http_request",
        "Agents::WebsiteAgent": "http_request",
        "Agents::EventFormattingAgent": "transform",
        "Agents::TriggerAgent": "trigger",
        "Agents::DeDuplicationAgent": "transform",
        "Agents::DelayAgent": "transform",
        "Agents::EmailAgent": "email",
        "Agents::SchedulerAgent": "schedule",
    ]

    /// Options Huginn uses to watch an agent's health or to tune its own runtime: they change nothing here.
    static let ignoredOptions: Set = [
        "expected_receive_period_in_days", "expected_update_period_in_days", "propagate_immediately",
        "skip_created_at", "force_encoding", "log_requests", "emit_events",
    ]

    /// Huginn's schedule names as cron expressions (UTC). `midnight` and `every_1d` are the same time; a cron
    /// expression exports as the first name listed for it.
    static let schedules: [(name: String, cron: String, seconds: Int64)] = {
        var table: [(String, String, Int64)] = [
            ("every_1m", "* * * * *", 60), ("every_2m", "*/2 * * * *", 120), ("every_5m", "*/5 * * * *", 300),
            ("every_10m", "*/10 * * * *", 600), ("every_30m", "*/30 * * * *", 1_800), ("every_1h", "0 * * * *", 3_600),
            ("every_2h", "0 */2 * * *", 7_200), ("every_5h", "0 */5 * * *", 18_000),
            ("every_12h", "0 */12 * * *", 43_200), ("midnight", "0 0 * * *", 86_400),
            ("every_1d", "0 0 * * *", 86_400), ("every_2d", "0 0 */2 * *", 172_800),
            ("every_7d", "0 0 * * 0", 604_800),
        ]
        for hour in 1...23 {
            let name = hour == 12 ? "noon" : hour < 12 ? "\(hour)am" : "\(hour - 12)pm"
            table.append((name, "0 \(hour) * * *", 86_400))
        }
        return table
    }()

    static func agents(
        _ agent: JSON,
        type huginnType: String,
        location: String,
        builder: inout StoryBuilder
    ) -> [DraftAgent] {
        let name = agent["name"]?.stringValue ?? ""
        var options = agent["options"]?.objectValue ?? [:]
        for key in ignoredOptions { options.removeValue(forKey: key) }
        let scheduleName = agent["schedule"]?.stringValue
        var chain: [DraftAgent]
        switch huginnType {
        case "Agents::WebhookAgent":
            chain = webhook(name, options)
        case "Agents::PostAgent":
            chain = [post(name, options)]
        case "Agents::WebsiteAgent" where (options["type"]?.stringValue ?? "").lowercased() == "json":
            chain = website(name, options)
        case "Agents::EventFormattingAgent":
            var rest = options
            let instructions = rest.removeValue(forKey: "instructions") ?? .object([:])
            if rest["mode"]?.stringValue == "clean" { rest.removeValue(forKey: "mode") }
            if rest["matchers"]?.arrayValue?.isEmpty == true { rest.removeValue(forKey: "matchers") }
            var result: JSONObject = ["mode": "message_only", "payload": instructions]
            for (key, value) in rest { result[key] = value }
            chain = [DraftAgent(name: name, type: "transform", options: result)]
        case "Agents::TriggerAgent":
            chain = trigger(name, options)
        case "Agents::DeDuplicationAgent":
            var result: JSONObject = ["mode": "deduplicate"]
            for (key, value) in options {
                switch key {
                case "property": result["path"] = value
                default: result[key] = value
                }
            }
            chain = [DraftAgent(name: name, type: "transform", options: result)]
        case "Agents::DelayAgent":
            // Huginn holds events until the agent's next scheduled run: the schedule's period is the delay.
            var result: JSONObject = ["mode": "delay"]
            let period = schedules.first { $0.name == scheduleName }?.seconds
            result["seconds"] = options.removeValue(forKey: "delay_seconds") ?? period.map(JSON.int) ?? .null
            for key in ["max_events", "keep", "max_emitted_events", "emit_interval"] {
                options.removeValue(forKey: key)
            }
            for (key, value) in options { result[key] = value }
            chain = [DraftAgent(name: name, type: "transform", options: result)]
            if case .null? = result["seconds"] {
                chain[0].options.removeValue(forKey: "seconds")
            }
        case "Agents::EmailAgent":
            chain = [email(name, options)]
        case "Agents::SchedulerAgent" where (options["action"]?.stringValue ?? "run") == "run":
            // Becomes the `schedule` of the agents it runs (see applyControlLinks).
            return []
        default:
            return [DraftAgent.unsupported(agent, type: huginnType, from: "Huginn")]
        }
        // A disabled Huginn agent is a disabled chain: none of its parts runs.
        let disabled = agent["disabled"]?.boolValue ?? false
        for index in chain.indices {
            chain[index].options = builder.coerced(chain[index].options, type: chain[index].type)
            chain[index].disabled = disabled
        }
        chain[chain.count - 1].keepEventsFor = TinesMapping.keepEventsFor(agent["keep_events_for"])
        if huginnType != "Agents::DelayAgent", let scheduleName,
            let cron = schedules.first(where: { $0.name == scheduleName })?.cron
        {
            chain[0].schedule = .string(cron)
        }
        return chain
    }

    /// A SchedulerAgent's cron expression on each agent it controls (Huginn's `control_links`).
    static func applyControlLinks(_ tree: JSON, agents: [JSON], builder: inout StoryBuilder) {
        var byTarget: [Int: [(cron: String, timeZone: String)]] = [:]
        for link in tree["control_links"]?.arrayValue ?? [] {
            guard let controller = link["controller"]?.intValue, let target = link["control_target"]?.intValue,
                agents.indices.contains(Int(controller)), agents.indices.contains(Int(target)),
                agents[Int(controller)]["type"]?.stringValue == "Agents::SchedulerAgent",
                builder.type(ofOrigin: Int(controller)) == nil,
                let text = agents[Int(controller)]["options"]?["schedule"]?.stringValue
            else { continue }
            byTarget[Int(target), default: []].append(cron(fromScheduler: text))
        }
        for (target, schedules) in byTarget.sorted(by: { $0.key < $1.key }) {
            if let schedule = StoryImport.schedule(schedules) { builder.schedule(origin: target, schedule) }
        }
    }

    /// `0 22 * * 1-5 Europe/Paris` (rufus-scheduler's form: an optional seconds field, an optional zone) as a
    /// schedule: `{cron, timezone}`, or the bare expression for UTC.
    static func cron(fromScheduler text: String) -> (cron: String, timeZone: String) {
        var fields = text.split(separator: " ").map(String.init)
        var zone = "UTC"
        if let last = fields.last, last.contains("/") || last == "UTC" {
            zone = last
            fields.removeLast()
        }
        if fields.count == 6 { fields.removeFirst() }
        return (fields.joined(separator: " "), zone)
    }

    private static func webhook(_ name: String, _ options: JSONObject) -> [DraftAgent] {
        var result = options
        let path = result.removeValue(forKey: "payload_path")?.stringValue ?? "."
        guard path != "." && !path.isEmpty else { return [DraftAgent(name: name, type: "webhook", options: result)] }
        let value = jsonPathTemplate(path, asObject: true)
        return [
            DraftAgent(name: "\(name) (received)", type: "webhook", options: result),
            DraftAgent(name: name, type: "transform", options: ["mode": "message_only", "payload": .string(value)]),
        ]
    }

    private static func post(_ name: String, _ options: JSONObject) -> DraftAgent {
        var result = JSONObject()
        for (key, value) in options {
            switch key {
            case "post_url": result["url"] = value
            case "no_merge" where value.boolValue == true || value.stringValue == "true": continue
            case "output_mode" where value.stringValue == "clean": continue
            default: result[key] = value
            }
        }
        if result["method"] == nil { result["method"] = "post" }
        // Huginn posts a form unless told otherwise.
        if result["content_type"] == nil { result["content_type"] = "form" }
        return DraftAgent(name: name, type: "http_request", options: result)
    }

    /// A JSON WebsiteAgent: fetch, then Huginn's extraction (JSONPath per key, zipped into one event per index).
    private static func website(_ name: String, _ options: JSONObject) -> [DraftAgent] {
        var fetch = JSONObject()
        var rest = options
        fetch["url"] = rest.removeValue(forKey: "url") ?? .null
        fetch["method"] = rest.removeValue(forKey: "method") ?? "get"
        for key in ["headers", "basic_auth", "disable_ssl_verification", "payload", "content_type"] {
            if let value = rest.removeValue(forKey: key) { fetch[key] = value }
        }
        if let agent = rest.removeValue(forKey: "user_agent") {
            var headers = fetch["headers"]?.objectValue ?? [:]
            headers["User-Agent"] = agent
            fetch["headers"] = .object(headers)
        }
        rest.removeValue(forKey: "type")
        let mode = rest.removeValue(forKey: "mode")?.stringValue ?? "all"
        let lookback = rest.removeValue(forKey: "uniqueness_look_back")
        let extract = rest.removeValue(forKey: "extract")?.objectValue ?? [:]
        // What is left has no equivalent: kept on the request, where lint names it.
        for (key, value) in rest { fetch[key] = value }
        var chain = [DraftAgent(name: "\(name) (fetch)", type: "http_request", options: fetch)]
        let paths = extract.map { ($0.key, $0.value["path"]?.stringValue ?? "") }
        let each = paths.contains { isMultiple($0.1) }
        var shapeName = name
        if mode == "on_change" { shapeName = "\(name) (item)" }
        if each {
            var zipped = ""
            for (index, (_, path)) in paths.enumerated() {
                zipped += "{%- assign v\(index) = .⟪0⟫.body | jsonpath: \(JSON.string(path).serialized()) -%}"
            }
            zipped += "{%- capture items -%}[{%- for first in v0 -%}{%- assign i = forloop.index0 -%}{"
            zipped += paths.enumerated().map { index, pair in
                "\(JSON.string(pair.0).serialized()): {{ v\(index)[i] | json }}"
            }.joined(separator: ", ")
            zipped += "}{%- unless forloop.last -%},{%- endunless -%}{%- endfor -%}]{%- endcapture -%}"
            zipped += "{{ items | json_parse | as_object }}"
            chain.append(
                DraftAgent(
                    name: "\(name) (each)",
                    type: "transform",
                    options: ["mode": "explode", "path": .string(zipped)]
                )
            )
            chain.append(
                DraftAgent(
                    name: shapeName,
                    type: "transform",
                    options: ["mode": "message_only", "payload": "{{ individual_item | as_object }}"]
                )
            )
        } else {
            var payload = JSONObject()
            for (key, path) in paths {
                payload[key] = .string("{{ .⟪0⟫.body | jsonpath: \(JSON.string(path).serialized()) | as_object }}")
            }
            chain.append(
                DraftAgent(
                    name: shapeName,
                    type: "transform",
                    options: ["mode": "message_only", "payload": .object(payload)]
                )
            )
        }
        if mode == "on_change" {
            let path = paths.map { "{{ \(Story.snakeCase($0.0)) | json }}" }.joined(separator: " ")
            var options: JSONObject = ["mode": "deduplicate", "path": .string(path)]
            if let lookback { options["lookback"] = lookback }
            chain.append(DraftAgent(name: name, type: "transform", options: options))
        }
        return chain
    }

    /// A JSONPath that can match several values (Huginn then emits one event per match).
    static func isMultiple(_ path: String) -> Bool {
        path.contains("[*]") || path.contains(".*") || path.contains("..")
    }

    private static func trigger(_ name: String, _ options: JSONObject) -> [DraftAgent] {
        var result = JSONObject()
        var rest = options
        let keepEvent = rest.removeValue(forKey: "keep_event")
        let message = rest.removeValue(forKey: "message")
        if let rules = rest.removeValue(forKey: "rules")?.arrayValue {
            result["rules"] = .array(
                rules.map { rule in
                    var converted = rule.objectValue ?? [:]
                    if let path = rule["path"]?.stringValue { converted["path"] = .string(jsonPathTemplate(path)) }
                    return .object(converted)
                }
            )
        }
        for (key, value) in rest { result[key] = value }
        if keepEvent?.boolValue == true || keepEvent?.stringValue == "true" {
            return [DraftAgent(name: name, type: "trigger", options: result)]
        }
        return [
            DraftAgent(name: "\(name) (rules)", type: "trigger", options: result),
            DraftAgent(
                name: name,
                type: "transform",
                options: ["mode": "message_only", "payload": ["message": message ?? ""]]
            ),
        ]
    }

    private static func email(_ name: String, _ options: JSONObject) -> DraftAgent {
        var result = JSONObject()
        var rest = options
        let headline = rest.removeValue(forKey: "headline")?.stringValue
        var body = rest.removeValue(forKey: "body")?.stringValue ?? "{{ message }}"
        if let headline, !headline.isEmpty { body = "<h2>\(headline)</h2>\n\(body)" }
        rest.removeValue(forKey: "content_type")
        if let from = rest.removeValue(forKey: "from") { result["from"] = from }
        for (key, value) in rest { result[key] = value }
        result["body"] = .string(body)
        var smtp = TinesMapping.emailWithSMTP(result)
        if let from = result["from"] { smtp["from"] = from }
        return DraftAgent(name: name, type: "email", options: smtp)
    }

    /// Huginn's value path (`data.items[0].title`, `$.a.b`) as a Liquid output.
    static func jsonPathTemplate(_ path: String, asObject: Bool = false) -> String {
        var trimmed = path
        if trimmed.hasPrefix("$.") { trimmed.removeFirst(2) }
        return "{{ \(trimmed)\(asObject ? " | as_object" : "") }}"
    }

    /// ``jsonPathTemplate(_:asObject:)`` backwards: the path of a `{{ a.b }}` output, if that is all the text is.
    static func jsonPath(fromTemplate text: String) -> String? {
        guard let match = text.wholeMatch(of: /\{\{ ([A-Za-z_][A-Za-z0-9_.\[\]]*) \}\}/) else { return nil }
        return String(match.output.1)
    }
}
