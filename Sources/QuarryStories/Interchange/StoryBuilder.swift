import Foundation
import QuarryCore

/// One Quarry agent an imported agent becomes, before names are final. In a chain, `⟪n⟫` in an option stands for
/// the snake-cased name of the chain's agent `n`, filled in once names are unique.
struct DraftAgent {
    var name: String
    var type: String
    var disabled = false
    var description: String?
    var options: JSONObject
    var schedule: JSON?
    var keepEventsFor: JSON?
    var timeout: JSON?
    var retry: JSON?

    init(name: String, type: String, options: JSONObject) {
        self.name = name
        self.type = type
        self.options = options
    }

    /// An agent Quarry has no type for: kept with its type and options, disabled, and said so.
    static func unsupported(_ agent: JSON, type: String, from product: String) -> DraftAgent {
        var draft = DraftAgent(
            name: agent["name"]?.stringValue ?? type,
            type: type,
            options: agent["options"]?.objectValue ?? [:]
        )
        draft.disabled = true
        draft.description = "Imported from \(product): Quarry has no \(type); kept disabled with its options."
        return draft
    }
}

/// Gathers the agents of an import and makes them a story: unique names, links, aliases for repeated names.
struct StoryBuilder {
    let registry: AgentRegistry
    private var drafts: [DraftAgent] = []
    /// The drafts each agent of the export became, by its position there.
    private var chains: [Int: [Int]] = [:]
    private var sources: [Int: [Int]] = [:]

    init(registry: AgentRegistry) {
        self.registry = registry
    }

    mutating func add(_ chain: [DraftAgent], origin: Int) {
        var indices: [Int] = []
        for (offset, draft) in chain.enumerated() {
            indices.append(drafts.count)
            if offset > 0 { sources[drafts.count] = [drafts.count - 1] }
            drafts.append(draft)
        }
        chains[origin] = indices
    }

    mutating func link(from source: Int, to receiver: Int) {
        guard let from = chains[source]?.last, let to = chains[receiver]?.first else { return }
        if !(sources[to] ?? []).contains(from) { sources[to, default: []].append(from) }
    }

    /// Sets `schedule` on the first agent `origin` became (where a run starts).
    mutating func schedule(origin: Int, _ schedule: JSON) {
        guard let first = chains[origin]?.first else { return }
        drafts[first].schedule = schedule
    }

    func type(ofOrigin origin: Int) -> String? {
        chains[origin]?.last.map { drafts[$0].type }
    }

    /// Tines writes booleans and numbers as strings (`"emit_no_match": "true"`): those of options that take a
    /// boolean or a number become one. Templates stay text.
    func coerced(_ options: JSONObject, type: String) -> JSONObject {
        guard let specs = registry[type]?.options else { return options }
        var result = options
        for spec in specs {
            guard case .string(let text)? = options[spec.name], !text.contains("{{"), !text.contains("{%") else {
                continue
            }
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            switch spec.kind {
            case .boolean where ["true", "false"].contains(trimmed.lowercased()):
                result[spec.name] = .bool(trimmed.lowercased() == "true")
            case .integer where Int64(trimmed) != nil: result[spec.name] = .int(Int64(trimmed)!)
            case .number where Int64(trimmed) != nil: result[spec.name] = .int(Int64(trimmed)!)
            case .number where Double(trimmed) != nil: result[spec.name] = .double(Double(trimmed)!)
            default: break
            }
        }
        return result
    }

    struct Built {
        var agents: [JSONObject]
        var aliases: JSONObject
        fileprivate var names: [Int: String]

        /// The final name of what the export's agent `origin` became (the last of its chain).
        func name(ofOrigin origin: Int) -> String? { names[origin] }
    }

    /// The story's agents with final names. `entryOrigin` (Tines' `entry_agent_guid`) is moved first when another
    /// agent would start runs before it.
    func finish(entryOrigin: Int?) -> Built {
        var order = Array(drafts.indices)
        if let entryOrigin, let chain = chains[entryOrigin], let first = chain.first, sources[first] == nil,
            order.prefix(while: { $0 != first }).contains(where: { sources[$0] == nil && !drafts[$0].disabled })
        {
            order = chain + order.filter { !chain.contains($0) }
        }
        // Unique names: a repeated name becomes `Name 1`, `Name 2` … in order, skipping names already taken.
        let groups = Dictionary(grouping: order, by: { Story.snakeCase(drafts[$0].name) })
        var taken = Set(groups.keys)
        var names: [Int: String] = [:]
        var aliasMembers: [(name: String, key: String, members: [Int])] = []
        for index in order {
            let key = Story.snakeCase(drafts[index].name)
            guard let group = groups[key], group.count > 1 else {
                names[index] = drafts[index].name
                continue
            }
            if names[group[0]] != nil { continue }
            var number = 0
            for member in group {
                var candidate: String
                repeat {
                    number += 1
                    candidate = "\(drafts[member].name) \(number)"
                } while taken.contains(Story.snakeCase(candidate))
                taken.insert(Story.snakeCase(candidate))
                names[member] = candidate
            }
            aliasMembers.append((drafts[group[0]].name, key, group))
        }
        let keyOf = names.mapValues(Story.snakeCase)
        func upstream(of index: Int) -> Set<Int> {
            var seen = Set<Int>()
            var pending = sources[index] ?? []
            while let next = pending.popLast() {
                if seen.insert(next).inserted { pending += sources[next] ?? [] }
            }
            return seen
        }
        var agents: [JSONObject] = []
        var usedAliases = Set<String>()
        for index in order {
            let draft = drafts[index]
            let chain = chains.values.first { $0.contains(index) } ?? [index]
            let above = upstream(of: index)
            var options = JSON.object(draft.options).mapStrings { text in
                var text = text
                for (offset, member) in chain.enumerated() {
                    text = text.replacingOccurrences(of: "⟪\(offset)⟫", with: keyOf[member]!)
                }
                for alias in aliasMembers where text.contains(".\(alias.key)") {
                    let reachable = alias.members.filter(above.contains)
                    if reachable.count == 1 {
                        text = Self.renamingReferences(in: text, from: alias.key, to: keyOf[reachable[0]]!)
                    } else if Self.references(alias.key, in: text) {
                        usedAliases.insert(alias.key)
                    }
                }
                return text
            }
            if options.objectValue == nil { options = .object([:]) }
            var agent: JSONObject = ["name": .string(names[index]!), "type": .string(draft.type)]
            if draft.disabled { agent["disabled"] = true }
            if let description = draft.description { agent["description"] = .string(description) }
            let received = (sources[index] ?? []).map { JSON.string(names[$0]!) }
            if received.count == 1 {
                agent["receives_from"] = received[0]
            } else if !received.isEmpty {
                agent["receives_from"] = .array(received)
            }
            if let schedule = draft.schedule { agent["schedule"] = schedule }
            if let keep = draft.keepEventsFor { agent["keep_events_for"] = keep }
            if let timeout = draft.timeout { agent["timeout"] = timeout }
            if let retry = draft.retry { agent["retry"] = retry }
            agent["options"] = options
            agents.append(agent)
        }
        var aliases = JSONObject()
        for alias in aliasMembers where usedAliases.contains(alias.key) {
            aliases[alias.name] = .array(alias.members.map { .string(names[$0]!) })
        }
        var originNames: [Int: String] = [:]
        for (origin, chain) in chains { originNames[origin] = chain.last.flatMap { names[$0] } }
        return Built(agents: agents, aliases: aliases, names: originNames)
    }

    /// Whether `text` reads `.key` inside a Liquid tag or output.
    static func references(_ key: String, in text: String) -> Bool {
        renamingReferences(in: text, from: key, to: "\u{0}") != text
    }

    /// `.from` → `.to` inside `{{ … }}` and `{% … %}` (not in the text around them, not `a.from` or `.from_x`).
    static func renamingReferences(in text: String, from: String, to: String) -> String {
        var result = ""
        var rest = text[...]
        while let open = rest.firstRange(of: /\{\{|\{%/) {
            result += rest[..<open.lowerBound]
            let closing = rest[open.lowerBound...].hasPrefix("{{") ? "}}" : "%}"
            let end = rest[open.upperBound...].range(of: closing)?.upperBound ?? rest.endIndex
            let tag = String(rest[open.lowerBound..<end])
            // Foundation's expressions, because Swift's Regex has no lookbehind.
            let pattern = "(?<![A-Za-z0-9_\\]\\)])\\.\(NSRegularExpression.escapedPattern(for: from))(?![A-Za-z0-9_])"
            let expression = try! NSRegularExpression(pattern: pattern)
            result += expression.stringByReplacingMatches(
                in: tag,
                range: NSRange(tag.startIndex..., in: tag),
                withTemplate: NSRegularExpression.escapedTemplate(for: ".\(to)")
            )
            rest = rest[end...]
        }
        return result + rest
    }
}
