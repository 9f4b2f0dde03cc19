import Foundation
public import QuarryCore
public import QuarryStories

/// `transform` — reshapes events, in Tines' modes:
/// - `message_only`: emits `payload` (rendered; `| as_object` leaves keep their JSON type);
/// - `explode`: one event per element of the array at `path`, as `{<to>: element, index, size, guid}` (at most
///   `limit`);
/// - `implode`: gathers the events that share `guid_path` until `size_path` of them arrived, then emits
///   `{guid, size, items, complete: true}`; after `timeout` seconds it emits what it has with `complete: false`;
/// - `extract`: applies each matcher `{path, regexp, to}` and emits `{<to>: [matches]}` (the first capture group
///   when the expression has one);
/// - `deduplicate`: emits the event unless the value at `path` was among the last `lookback` values;
/// - `delay`: emits the event after `seconds`.
public struct TransformAgent: StoryAgent {
    public static let type = "transform"
    public static let summary = "Reshapes events: message_only, explode, implode, extract, deduplicate, delay."
    static let modes = ["message_only", "explode", "implode", "extract", "deduplicate", "delay"]
    public static let options: [OptionSpec] = [
        OptionSpec("mode", .string, allowed: modes, "One of \(modes.joined(separator: ", ")) (default message_only)."),
        OptionSpec("payload", .any, "message_only: the event to emit."),
        OptionSpec("path", .any, "explode, deduplicate: the value to use (a template, or a dotted path)."),
        OptionSpec("to", .string, "explode: the key each element is emitted under (default individual_item)."),
        OptionSpec("limit", .integer, "explode: the most events to emit."),
        OptionSpec("guid_path", .any, "implode: what identifies a group (the guid an explode emitted)."),
        OptionSpec("size_path", .any, "implode: how many events the group has."),
        OptionSpec("item_path", .any, "implode: what to collect from each event (default the whole event)."),
        OptionSpec(
            "timeout",
            .number,
            "implode: seconds to wait for a group before emitting it incomplete (default 300)."
        ),
        OptionSpec("matchers", .array, "extract: [{path, regexp, to}]."),
        OptionSpec("lookback", .integer, "deduplicate: how many earlier values to compare with (default 1000)."),
        OptionSpec("seconds", .number, "delay: how long to hold the event."),
    ]

    let mode: String

    public var isSerial: Bool { mode == "implode" || mode == "deduplicate" }

    public init(definition: AgentDefinition) throws(StoryProblem) {
        mode = definition.options["mode"]?.stringValue ?? "message_only"
        let required: [String: [String]] = [
            "explode": ["path"], "implode": ["guid_path", "size_path"], "extract": ["matchers"],
            "deduplicate": ["path"], "delay": ["seconds"],
        ]
        for option in required[mode] ?? [] where definition.options[option] == nil {
            throw StoryProblem(definition.location, option: "options.\(option)", "mode \(mode) needs this option")
        }
        for (index, matcher) in (definition.options["matchers"]?.arrayValue ?? []).enumerated() {
            guard let pattern = matcher["regexp"]?.stringValue, matcher["to"]?.stringValue != nil else {
                throw StoryProblem(
                    definition.location,
                    option: "options.matchers[\(index)]",
                    "a matcher is {path, regexp, to}"
                )
            }
            if (try? NSRegularExpression(pattern: pattern)) == nil {
                throw StoryProblem(
                    definition.location,
                    option: "options.matchers[\(index)].regexp",
                    "not a valid regular expression"
                )
            }
        }
    }

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        switch mode {
        case "explode":
            guard let items = Self.value(input.options["path"], context: context).arrayValue else {
                throw AgentError.failed("explode: path does not lead to an array")
            }
            let limit = input.integer("limit") ?? Int.max
            let to = input.string("to") ?? "individual_item"
            let guid = UUID().uuidString.lowercased()
            let size = Int64(min(items.count, limit))
            let events = items.prefix(limit).enumerated().map { index, item -> JSON in
                [
                    .init(stringLiteral: to): item, "index": .int(Int64(index)), "size": .int(size),
                    "guid": .string(guid),
                ]
            }
            return AgentOutput(events: events)
        case "implode":
            let guid = TriggerRules.text(Self.value(input.options["guid_path"], context: context))
            guard let size = Int(TriggerRules.text(Self.value(input.options["size_path"], context: context))) else {
                throw AgentError.failed("implode: size_path is not a number")
            }
            let item = input.options["item_path"].map { Self.value($0, context: context) } ?? input.event
            let items = try await context.memory.append(item, to: guid)
            if items.count >= size {
                _ = try await context.memory.take(guid)
                var output = AgentOutput(events: [
                    ["guid": .string(guid), "size": .int(Int64(size)), "items": .array(items), "complete": true]
                ])
                output.cancelledTimers = [guid]
                return output
            }
            if items.count == 1 {
                let timeout = input.number("timeout") ?? 300
                return AgentOutput(timers: [
                    (after: timeout, payload: ["guid": .string(guid), "size": .int(Int64(size))], key: guid)
                ])
            }
            return AgentOutput()
        case "extract":
            var event = JSONObject()
            for matcher in input.options["matchers"]?.arrayValue ?? [] {
                let text = TriggerRules.text(Self.value(matcher["path"], context: context))
                let pattern = matcher["regexp"]?.stringValue ?? ""
                guard let expression = try? NSRegularExpression(pattern: pattern) else {
                    throw AgentError.failed("extract: '\(pattern)' is not a valid regular expression")
                }
                let found = expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
                    match -> JSON? in
                    let group = match.numberOfRanges > 1 ? 1 : 0
                    return Range(match.range(at: group), in: text).map { .string(String(text[$0])) }
                }
                event[matcher["to"]?.stringValue ?? "matches"] = .array(found)
            }
            return AgentOutput(events: [.object(event)])
        case "deduplicate":
            let key = Self.value(input.options["path"], context: context).serialized()
            let lookback = input.integer("lookback") ?? 1_000
            return try await context.memory.seen(key, lookback: max(1, lookback))
                ? AgentOutput() : AgentOutput(events: [input.event])
        case "delay":
            return AgentOutput(events: [input.event], deliverAfter: max(0, input.number("seconds") ?? 0))
        default:
            return AgentOutput(events: [input.options["payload"] ?? .object([:])])
        }
    }

    public func timerFired(_ payload: JSON, context: AgentContext) async throws -> AgentOutput {
        let guid = payload["guid"]?.stringValue ?? ""
        let items = try await context.memory.take(guid)
        guard !items.isEmpty else { return AgentOutput() }  // the group completed before its timeout
        return AgentOutput(events: [
            ["guid": .string(guid), "size": payload["size"] ?? .null, "items": .array(items), "complete": false]
        ])
    }

    /// An option that names a value: a rendered template's result, or a dotted path into the event and the
    /// upstream agents' events (`search.hits`).
    static func value(_ option: JSON?, context: AgentContext) -> JSON {
        guard let option else { return .null }
        if case .string(let text) = option, !text.isEmpty, !text.contains(" "),
            let found = JSON.object(context.variables).value(
                atPath: text.hasPrefix(".") ? String(text.dropFirst()) : text
            )
        {
            return found
        }
        if case .string(let text) = option, let parsed = try? JSON.parse(text),
            parsed.arrayValue != nil || parsed.objectValue != nil
        {
            return parsed
        }
        return option
    }
}
