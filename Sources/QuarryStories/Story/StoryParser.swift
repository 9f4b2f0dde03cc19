import Foundation
public import QuarryCore
import Yams

extension Story {
    /// Reads a story file: YAML (`.yaml`, `.yml`) or JSON (anything else that starts with `{`).
    public init(contentsOf path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw StoryProblems([StoryProblem("story", "cannot read \(path): \(error.localizedDescription)")])
        }
        try self.init(text: text)
    }

    /// Reads a story from YAML or JSON text (JSON is YAML, but JSON's own parser keeps integers exact).
    public init(text: String) throws {
        let trimmed = text.drop { $0.isWhitespace }
        let tree: JSON
        if trimmed.first == "{" {
            do {
                tree = try JSON.parse(text)
            } catch {
                throw StoryProblems([StoryProblem("story", "not valid JSON: \(error)")])
            }
        } else {
            tree = try YAMLText.document(text)
        }
        var problems: [StoryProblem] = []
        self.init(json: tree, problems: &problems)
        if !problems.isEmpty { throw StoryProblems(problems) }
        self.text = text
    }

    /// Reads the shape of a story, collecting what does not fit in `problems` and keeping what does.
    public init(json: JSON, problems: inout [StoryProblem]) {
        let object = json.objectValue ?? [:]
        if json.objectValue == nil { problems.append(StoryProblem("story", "a story is an object (a YAML mapping)")) }
        source = json
        let known: Set = [
            "name", "description", "agents", "exit_agent", "credentials", "resources", "max_events", "form",
            "schema_version", "aliases", "layout", "max_run_events",
        ]
        for key in object.keys where !known.contains(key) {
            problems.append(
                StoryProblem("story", option: key, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
            )
        }
        name = object["name"]?.stringValue ?? ""
        if name.isEmpty { problems.append(StoryProblem("story", option: "name", "a story needs a name")) }
        description = object["description"]?.stringValue ?? ""
        exitAgent = object["exit_agent"]?.stringValue.map(Story.snakeCase)
        credentials = Self.names(object["credentials"], "credentials", &problems)
        resources = Self.names(object["resources"], "resources", &problems)
        maxEvents = Int(object["max_events"]?.intValue ?? 100_000)
        maxRunEvents = Int(object["max_run_events"]?.intValue ?? 10_000)
        form = object["form"].map { StoryForm(json: $0, problems: &problems) }
        aliases = []
        if let value = object["aliases"] {
            for (name, members) in value.objectValue ?? [:] {
                guard let list = members.arrayValue, !list.isEmpty, list.allSatisfy({ $0.stringValue != nil }) else {
                    problems.append(StoryProblem("story", option: "aliases.\(name)", "expected a list of agent names"))
                    continue
                }
                aliases.append(StoryAlias(name: name, members: list.compactMap(\.stringValue)))
            }
            if value.objectValue == nil {
                problems.append(StoryProblem("story", option: "aliases", "expected a mapping of names to agent lists"))
            }
        }
        layout = [:]
        if let value = object["layout"] {
            for (name, point) in value.objectValue ?? [:] {
                guard let pair = point.arrayValue, pair.count == 2, let x = pair[0].doubleValue,
                    let y = pair[1].doubleValue
                else {
                    problems.append(StoryProblem("story", option: "layout.\(name)", "expected [x, y]"))
                    continue
                }
                layout[Story.snakeCase(name)] = DiagramPosition(x: x, y: y)
            }
            if value.objectValue == nil {
                problems.append(StoryProblem("story", option: "layout", "expected a mapping of agent names to [x, y]"))
            }
        }
        agents = []
        guard let list = object["agents"]?.arrayValue, !list.isEmpty else {
            problems.append(StoryProblem("story", option: "agents", "a story needs a list of agents"))
            return
        }
        for (index, item) in list.enumerated() {
            agents.append(AgentDefinition(json: item, index: index, problems: &problems))
        }
    }

    private static func names(_ value: JSON?, _ field: String, _ problems: inout [StoryProblem]) -> [String] {
        guard let value else { return [] }
        guard let array = value.arrayValue, array.allSatisfy({ $0.stringValue != nil }) else {
            problems.append(StoryProblem("story", option: field, "expected a list of names"))
            return []
        }
        return array.compactMap(\.stringValue)
    }
}

extension AgentDefinition {
    init(json: JSON, index: Int, problems: inout [StoryProblem]) {
        let object = json.objectValue ?? [:]
        name = object["name"]?.stringValue ?? ""
        key = Story.snakeCase(name)
        location = name.isEmpty ? "agents[\(index)]" : "agents[\(index)] (\(name))"
        if json.objectValue == nil { problems.append(StoryProblem(location, "an agent is an object")) }
        if key.isEmpty { problems.append(StoryProblem(location, option: "name", "an agent needs a name")) }
        let known: Set = [
            "name", "type", "options", "receives_from", "schedule", "keep_events_for", "retry", "timeout",
            "description", "disabled",
        ]
        for field in object.keys where !known.contains(field) {
            problems.append(
                StoryProblem(
                    location,
                    option: field,
                    "unknown field (known: \(known.sorted().joined(separator: ", ")))"
                )
            )
        }
        type = object["type"]?.stringValue ?? ""
        disabled = false
        if let value = object["disabled"] {
            if let flag = value.boolValue {
                disabled = flag
            } else {
                problems.append(StoryProblem(location, option: "disabled", "expected true or false"))
            }
        }
        if type.isEmpty { problems.append(StoryProblem(location, option: "type", "an agent needs a type")) }
        options = object["options"] ?? .object([:])
        if options.objectValue == nil {
            problems.append(StoryProblem(location, option: "options", "options are an object"))
        }
        switch object["receives_from"] {
        case nil, .null: sources = []
        case .string(let single): sources = [Story.snakeCase(single)]
        case .array(let list) where list.allSatisfy({ $0.stringValue != nil }):
            sources = list.compactMap(\.stringValue).map(Story.snakeCase)
        default:
            sources = []
            problems.append(StoryProblem(location, option: "receives_from", "expected an agent name or a list of them"))
        }
        schedules = []
        var scheduleItems: [JSON] = []
        switch object["schedule"] {
        case nil, .null: break
        case .array(let list): scheduleItems = list
        case let single?: scheduleItems = [single]
        }
        for item in scheduleItems {
            if let cron = item.stringValue {
                schedules.append(ScheduleDefinition(cron: cron, timeZone: "UTC"))
            } else if let cron = item["cron"]?.stringValue {
                schedules.append(ScheduleDefinition(cron: cron, timeZone: item["timezone"]?.stringValue ?? "UTC"))
            } else {
                problems.append(
                    StoryProblem(location, option: "schedule", "expected a cron expression or {cron, timezone}")
                )
            }
        }
        keepEventsFor = nil
        if let keep = object["keep_events_for"] {
            if let seconds = DurationText.seconds(keep) {
                keepEventsFor = seconds
            } else {
                problems.append(StoryProblem(location, option: "keep_events_for", "expected a duration like 7d or 12h"))
            }
        }
        retry = RetryPolicy()
        if let retryObject = object["retry"] {
            if let attempts = retryObject["max_attempts"]?.intValue, attempts >= 1 {
                retry.maximumAttempts = Int(attempts)
            } else if retryObject["max_attempts"] != nil {
                problems.append(StoryProblem(location, option: "retry.max_attempts", "expected a number ≥ 1"))
            }
            if let delay = retryObject["initial_delay"] {
                if let seconds = DurationText.seconds(delay) {
                    retry.initialDelay = seconds
                } else {
                    problems.append(StoryProblem(location, option: "retry.initial_delay", "expected a duration"))
                }
            }
            if let delay = retryObject["max_delay"] {
                if let seconds = DurationText.seconds(delay) {
                    retry.maximumDelay = seconds
                } else {
                    problems.append(StoryProblem(location, option: "retry.max_delay", "expected a duration"))
                }
            }
        }
        timeout = 60
        if let value = object["timeout"] {
            if let seconds = DurationText.seconds(value), seconds > 0 {
                timeout = seconds
            } else {
                problems.append(StoryProblem(location, option: "timeout", "expected a duration like 30s"))
            }
        }
    }
}

extension StoryForm {
    init(json: JSON, problems: inout [StoryProblem]) {
        title = json["title"]?.stringValue ?? ""
        description = json["description"]?.stringValue ?? ""
        switch json["visibility"]?.stringValue ?? "private" {
        case "public": isPublic = true
        case "private": isPublic = false
        default:
            isPublic = false
            problems.append(StoryProblem("form", option: "visibility", "expected 'private' or 'public'"))
        }
        fields = []
        for (index, item) in (json["fields"]?.arrayValue ?? []).enumerated() {
            guard let name = item["name"]?.stringValue, !name.isEmpty else {
                problems.append(StoryProblem("form", option: "fields[\(index)].name", "a form field needs a name"))
                continue
            }
            let type = item["type"]?.stringValue ?? "text"
            if !["text", "textarea", "number", "email", "select", "boolean"].contains(type) {
                problems.append(
                    StoryProblem(
                        "form",
                        option: "fields[\(index)].type",
                        "unknown field type '\(type)' (text, textarea, number, email, select, boolean)"
                    )
                )
            }
            fields.append(
                Field(
                    name: name,
                    label: item["label"]?.stringValue ?? name,
                    type: type,
                    required: item["required"]?.boolValue ?? false,
                    defaultValue: item["default"],
                    options: item["options"]?.arrayValue?.compactMap(\.stringValue) ?? []
                )
            )
        }
    }
}

/// Durations as stories write them: `30s`, `5m`, `12h`, `7d`, `2w`, or a number of seconds.
enum DurationText {
    /// The longest duration a story may name (100 years): longer ones, and infinities, would overflow the
    /// arithmetic on times.
    static let maximum: Double = 100 * 365 * 86_400

    static func seconds(_ value: JSON) -> Double? {
        let seconds: Double?
        switch value {
        case .int(let number): seconds = Double(number)
        case .double(let number): seconds = number
        case .string(let text): seconds = Self.seconds(text)
        default: seconds = nil
        }
        guard let seconds, seconds >= 0, seconds <= maximum else { return nil }
        return seconds
    }

    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let unit = trimmed.last else { return nil }
        let multiplier: Double
        switch unit {
        case "s": multiplier = 1
        case "m": multiplier = 60
        case "h": multiplier = 3_600
        case "d": multiplier = 86_400
        case "w": multiplier = 604_800
        default: return Double(trimmed).flatMap { $0 >= 0 ? $0 : nil }
        }
        guard let number = Double(trimmed.dropLast()), number >= 0 else { return nil }
        return number * multiplier
    }
}

/// YAML text as JSON values, keeping mapping order and YAML's scalar types (Yams' `Node`, converted).
public enum YAMLText {
    /// The one document of `text`. A syntax error (an indentation mistake, an unclosed quote, a tab) is a problem
    /// at its line and column; an empty text or several documents too.
    public static func document(_ text: String) throws -> JSON {
        let root: Node?
        do {
            // `compose_all`'s lazy sequence would end quietly at a syntax error; the parser throws it.
            root = try Parser(yaml: text).singleRoot()
        } catch let error as YamlError {
            throw StoryProblems([problem(error)])
        }
        guard let root else { throw StoryProblems([StoryProblem("story", "the file is empty: expected a story")]) }
        return json(root)
    }

    /// Every document of `text` (Elasticsearch's YAML tests hold several), with the same errors as ``document(_:)``.
    public static func documents(_ text: String) throws -> [JSON] {
        do {
            let parser = try Parser(yaml: text)
            var documents: [JSON] = []
            while let root = try parser.nextRoot() { documents.append(json(root)) }
            return documents
        } catch let error as YamlError {
            throw StoryProblems([problem(error)])
        }
    }

    /// Yams' error as a problem at its position (its own description repeats the line with a caret).
    static func problem(_ error: YamlError) -> StoryProblem {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "not valid YAML: \(problem)" + (context.map { " (\($0.text))" } ?? "")
            if problem.contains("cannot start any token") { message += "; YAML indents with spaces, not tabs" }
            return StoryProblem("story", message, line: mark.line, column: mark.column)
        default:
            return StoryProblem("story", "not valid YAML: \(error)")
        }
    }

    static func json(_ node: Node) -> JSON {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                switch node.tag.description {
                case "tag:yaml.org,2002:int": if let value = node.int { return .int(Int64(value)) }
                case "tag:yaml.org,2002:float": if let value = node.float { return .double(value) }
                case "tag:yaml.org,2002:bool": if let value = node.bool { return .bool(value) }
                case "tag:yaml.org,2002:null": return .null
                default: break
                }
            }
            return .string(scalar.string)
        case .sequence(let sequence): return .array(sequence.map(json))
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping { object[key.string ?? ""] = json(value) }
            return .object(object)
        case .alias: return .null
        }
    }
}
