import Foundation
public import QuarryCore
public import QuarryStories

/// `trigger` — decides: emits the incoming event when its rules match, with `rule_matched: true`; with
/// `emit_no_match`, emits it with `rule_matched: false` when they do not (as Tines does).
///
/// A rule is `{type, path, value}`: `path` is a template (`{{ .search.total }}`), rendered before the rule is
/// tested; `value` may be a list, and the rule matches when any value does. Types: `regex` and `!regex`
/// (case-insensitive), `field==value`, `field!=value`, `field<value`, `field<=value`, `field>value`,
/// `field>=value` (numbers compared as numbers when both sides are numbers, text otherwise), `in` and `not in`
/// (the value contains the field's text). `must_match` says how many rules must match (default: all).
public struct TriggerAgent: StoryAgent {
    public static let type = "trigger"
    public static let summary = "Emits the event when its rules match (Tines' trigger)."
    public static let options: [OptionSpec] = [
        OptionSpec("rules", .array, required: true, "The rules: [{type, path, value}]."),
        OptionSpec("must_match", .integer, "How many rules must match (default: all)."),
        OptionSpec("emit_no_match", .boolean, "Emit the event with rule_matched: false when the rules do not match."),
    ]
    static let ruleTypes = TriggerRules.types

    public init(definition: AgentDefinition) throws(StoryProblem) {
        for (index, rule) in (definition.options["rules"]?.arrayValue ?? []).enumerated() {
            let option = "options.rules[\(index)]"
            guard rule.objectValue != nil else {
                throw StoryProblem(definition.location, option: option, "a rule is an object {type, path, value}")
            }
            guard let type = rule["type"]?.stringValue, Self.ruleTypes.contains(type) else {
                throw StoryProblem(
                    definition.location,
                    option: option + ".type",
                    "unknown rule type (known: \(Self.ruleTypes.joined(separator: ", ")))"
                )
            }
            guard rule["path"] != nil else {
                throw StoryProblem(definition.location, option: option + ".path", "a rule needs a path")
            }
            if type.hasSuffix("regex"), let pattern = rule["value"]?.stringValue, !pattern.contains("{{"),
                (try? NSRegularExpression(pattern: pattern)) == nil
            {
                throw StoryProblem(definition.location, option: option + ".value", "not a valid regular expression")
            }
        }
    }

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        let rules = input.options["rules"]?.arrayValue ?? []
        var matched = 0
        for rule in rules where try TriggerRules.matches(rule) { matched += 1 }
        let required = input.integer("must_match") ?? rules.count
        let isMatch = matched >= required
        guard isMatch || input.bool("emit_no_match") else { return AgentOutput() }
        var event = input.event.objectValue ?? ["body": input.event]
        event["rule_matched"] = .bool(isMatch)
        return AgentOutput(events: [.object(event)])
    }

}

/// Tines' rule types, tested on a rendered rule.
public enum TriggerRules {
    public static let types = [
        "regex", "!regex", "field==value", "field!=value", "field<value", "field<=value", "field>value", "field>=value",
        "in", "not in",
    ]

    public static func matches(_ rule: JSON) throws -> Bool {
        let type = rule["type"]?.stringValue ?? ""
        let field = text(rule["path"] ?? .null)
        let values: [JSON]
        switch rule["value"] {
        case .array(let list)?: values = list
        case let value?: values = [value]
        case nil: values = [.string("")]
        }
        switch type {
        case "regex", "!regex":
            let any = try values.contains { value in
                let pattern = text(value)
                guard let expression = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else {
                    throw AgentError.failed("rule value '\(pattern)' is not a valid regular expression")
                }
                return expression.firstMatch(in: field, range: NSRange(field.startIndex..., in: field)) != nil
            }
            return type == "regex" ? any : !any
        case "in", "not in":
            let any = values.contains { value in
                if case .array = value { return value.arrayValue?.contains { text($0) == field } ?? false }
                let candidates = text(value).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                return candidates.contains(field) || text(value).contains(field) && !field.isEmpty
            }
            return type == "in" ? any : !any
        case "field!=value":
            return !values.contains { compare(field, text($0)) == .orderedSame }
        default:
            return values.contains { value in
                let order = compare(field, text(value))
                switch type {
                case "field==value": return order == .orderedSame
                case "field<value": return order == .orderedAscending
                case "field<=value": return order != .orderedDescending
                case "field>value": return order == .orderedDescending
                case "field>=value": return order != .orderedAscending
                default: return false
                }
            }
        }
    }

    /// Numbers as numbers when both sides are numbers; text otherwise.
    static func compare(_ left: String, _ right: String) -> ComparisonResult {
        let trimmedLeft = left.trimmingCharacters(in: .whitespaces)
        let trimmedRight = right.trimmingCharacters(in: .whitespaces)
        if let a = Double(trimmedLeft), let b = Double(trimmedRight) {
            return a == b ? .orderedSame : a < b ? .orderedAscending : .orderedDescending
        }
        return left == right ? .orderedSame : left < right ? .orderedAscending : .orderedDescending
    }

    static func text(_ value: JSON) -> String {
        switch value {
        case .string(let text): return text
        case .null: return ""
        default: return value.serialized()
        }
    }
}
