import Foundation
import QuarryCore

/// Exporting to Huginn: the chains ``HuginnMapping`` made of one Huginn agent (`Name (fetch)` → `Name (each)` →
/// `Name`, `Name (rules)` → `Name`, `Name (received)` → `Name`) are found again and written as that one agent, at
/// the position of the chain's first agent; every other agent is mapped on its own.
struct HuginnChains {
    /// A chain: its agents in order (the first where events enter, the last with the Huginn agent's name).
    struct Chain {
        var kind: Kind
        var members: [String]
        enum Kind { case website, trigger, webhook }
    }

    let story: Story
    private(set) var chains: [String: Chain] = [:]  // by the key of the chain's first agent
    /// Agents written as part of a chain that starts elsewhere.
    private(set) var absorbed = Set<String>()
    private var headOf: [String: String] = [:]
    private var positions: [String: Int] = [:]

    init(_ story: Story) {
        self.story = story
        let byKey = Dictionary(story.agents.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        // A chain is disabled as a whole (a disabled Huginn agent) or not at all.
        func onlyReceiver(of key: String, named name: String, type: String) -> AgentDefinition? {
            let receivers = story.agents.filter { $0.sources.contains(key) }
            guard receivers.count == 1, let receiver = receivers.first, receiver.sources == [key],
                receiver.name == name, receiver.type == type, receiver.disabled == byKey[key]?.disabled
            else { return nil }
            return receiver
        }
        for agent in story.agents where !agent.type.hasPrefix("Agents::") {
            var chain: Chain?
            if let base = agent.name.wholeMatch(of: /(.+) \(fetch\)/)?.output.1, agent.type == "http_request" {
                let base = String(base)
                if let each = onlyReceiver(of: agent.key, named: "\(base) (each)", type: "transform") {
                    if let item = onlyReceiver(of: each.key, named: "\(base) (item)", type: "transform"),
                        let dedupe = onlyReceiver(of: item.key, named: base, type: "transform")
                    {
                        chain = Chain(kind: .website, members: [agent.key, each.key, item.key, dedupe.key])
                    } else if let shape = onlyReceiver(of: each.key, named: base, type: "transform") {
                        chain = Chain(kind: .website, members: [agent.key, each.key, shape.key])
                    }
                } else if let item = onlyReceiver(of: agent.key, named: "\(base) (item)", type: "transform"),
                    let dedupe = onlyReceiver(of: item.key, named: base, type: "transform")
                {
                    chain = Chain(kind: .website, members: [agent.key, item.key, dedupe.key])
                } else if let shape = onlyReceiver(of: agent.key, named: base, type: "transform") {
                    chain = Chain(kind: .website, members: [agent.key, shape.key])
                }
            } else if let base = agent.name.wholeMatch(of: /(.+) \(rules\)/)?.output.1, agent.type == "trigger",
                let message = onlyReceiver(of: agent.key, named: String(base), type: "transform"),
                message.options["payload"]?.objectValue?.keys == ["message"]
            {
                chain = Chain(kind: .trigger, members: [agent.key, message.key])
            } else if let base = agent.name.wholeMatch(of: /(.+) \(received\)/)?.output.1, agent.isWebhook,
                let value = onlyReceiver(of: agent.key, named: String(base), type: "transform"),
                value.options["payload"]?.stringValue?.hasSuffix("| as_object }}") == true
            {
                chain = Chain(kind: .webhook, members: [agent.key, value.key])
            }
            guard let chain, chain.members.dropFirst().allSatisfy({ byKey[$0] != nil && headOf[$0] == nil }) else {
                continue
            }
            chains[agent.key] = chain
            for member in chain.members {
                headOf[member] = agent.key
                if member != agent.key { absorbed.insert(member) }
            }
        }
        var position = 0
        for agent in story.agents where !absorbed.contains(agent.key) {
            positions[agent.key] = position
            position += 1
        }
    }

    /// The position in the scenario of the agent that `key` is written as.
    func position(of key: String) -> Int? {
        positions[headOf[key] ?? key]
    }

    /// Huginn's type, options and schedule name for `agent` (or the chain it starts).
    func huginnAgent(
        _ agent: AgentDefinition,
        options: JSONObject,
        renamed: (JSON) -> JSON
    ) throws -> (type: String, options: JSONObject, schedule: String?) {
        let byKey = Dictionary(story.agents.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let scheduleName = huginnSchedule(agent)
        let quarry = ("Quarry::\(agent.type)", options, scheduleName)
        if agent.disabled && agent.type.hasPrefix("Agents::") { return (agent.type, options, scheduleName) }
        if let chain = chains[agent.key] {
            let members = chain.members.compactMap { byKey[$0] }.map { member in
                (definition: member, options: renamed(member.options).objectValue ?? [:])
            }
            switch chain.kind {
            case .website:
                if let website = website(members.map(\.options)) {
                    return ("Agents::WebsiteAgent", website, scheduleName)
                }
            case .trigger:
                if var trigger = trigger(members[0].options) {
                    trigger["message"] = members[1].options["payload"]?["message"] ?? ""
                    return ("Agents::TriggerAgent", trigger, scheduleName)
                }
            case .webhook:
                let template = members[1].options["payload"]?.stringValue ?? ""
                if let match = template.wholeMatch(of: /\{\{ (.+) \| as_object \}\}/) {
                    var webhook = members[0].options
                    webhook["payload_path"] = .string(String(match.output.1))
                    return ("Agents::WebhookAgent", webhook, scheduleName)
                }
            }
        }
        let mode = options["mode"]?.stringValue
        switch agent.type {
        case "webhook":
            return ("Agents::WebhookAgent", options, scheduleName)
        case "http_request":
            var post = JSONObject()
            for (key, value) in options { post[key == "url" ? "post_url" : key] = value }
            if options["method"] == nil { post["method"] = "get" }
            if options["content_type"] == nil { post["content_type"] = "json" }
            post["no_merge"] = "true"
            return ("Agents::PostAgent", post, scheduleName)
        case "trigger":
            guard var trigger = trigger(options) else { return quarry }
            trigger["keep_event"] = "true"
            return ("Agents::TriggerAgent", trigger, scheduleName)
        case "transform" where mode == "message_only" && options["payload"]?.objectValue != nil:
            var formatting: JSONObject = ["instructions": options["payload"]!, "mode": "clean"]
            for (key, value) in options where key != "mode" && key != "payload" { formatting[key] = value }
            return ("Agents::EventFormattingAgent", formatting, scheduleName)
        case "transform" where mode == "deduplicate":
            var dedupe = JSONObject()
            for (key, value) in options where key != "mode" { dedupe[key == "path" ? "property" : key] = value }
            return ("Agents::DeDuplicationAgent", dedupe, scheduleName)
        case "transform" where mode == "delay" && agent.schedules.isEmpty:
            let seconds = options["seconds"]?.intValue
            guard let name = HuginnMapping.schedules.first(where: { $0.seconds == seconds })?.name else {
                return quarry
            }
            var delay = JSONObject()
            for (key, value) in options where key != "mode" && key != "seconds" { delay[key] = value }
            return ("Agents::DelayAgent", delay, name)
        case "email":
            var email = JSONObject()
            let smtp = TinesMapping.emailWithSMTP([:])
            if let from = options["from"], from != smtp["from"] { email["from"] = from }
            for (key, value) in options where key != "from" && key != "body" && smtp[key] == nil {
                email[key] = value
            }
            email["body"] = options["body"] ?? ""
            return ("Agents::EmailAgent", email, scheduleName)
        default:
            return quarry
        }
    }

    /// Huginn's name for the agent's schedule when it has one (else a SchedulerAgent runs it).
    private func huginnSchedule(_ agent: AgentDefinition) -> String? {
        guard agent.schedules.count == 1, agent.schedules[0].timeZone == "UTC" else { return nil }
        return HuginnMapping.schedules.first { $0.cron == agent.schedules[0].cron }?.name
    }

    /// A trigger's rules with Huginn's paths, when each path is a plain `{{ a.b }}`.
    private func trigger(_ options: JSONObject) -> JSONObject? {
        var result = options
        guard let rules = options["rules"]?.arrayValue else { return nil }
        var converted: [JSON] = []
        for rule in rules {
            guard var object = rule.objectValue, let template = rule["path"]?.stringValue,
                let path = HuginnMapping.jsonPath(fromTemplate: template)
            else { return nil }
            object["path"] = .string(path)
            converted.append(.object(object))
        }
        result["rules"] = .array(converted)
        return result
    }

    /// The WebsiteAgent a fetch → (each →) shape (→ deduplicate) chain came from.
    private func website(_ members: [JSONObject]) -> JSONObject? {
        var fetch = members[0]
        var website = JSONObject()
        website["url"] = fetch.removeValue(forKey: "url") ?? ""
        website["type"] = "json"
        if fetch["method"]?.stringValue == "get" { fetch.removeValue(forKey: "method") }
        var extract = JSONObject()
        let quoted = #/("(?:[^"\\]|\\.)*")/#
        if members.count >= 3, members[1]["mode"]?.stringValue == "explode" {
            let text = members[1]["path"]?.stringValue ?? ""
            var paths: [Int: String] = [:]
            for match in text.matches(of: /assign v([0-9]+) = \.[a-z0-9_]+\.body \| jsonpath: ("(?:[^"\\]|\\.)*")/) {
                paths[Int(match.output.1)!] = (try? JSON.parse(String(match.output.2)))?.stringValue
            }
            for match in text.matches(of: /("(?:[^"\\]|\\.)*"): \{\{ v([0-9]+)\[i\] \| json \}\}/) {
                guard let key = (try? JSON.parse(String(match.output.1)))?.stringValue,
                    let path = paths[Int(match.output.2)!]
                else { return nil }
                extract[key] = ["path": .string(path)]
            }
        } else {
            for (key, value) in members[1]["payload"]?.objectValue ?? [:] {
                guard let text = value.stringValue, let match = text.firstMatch(of: quoted),
                    let path = (try? JSON.parse(String(match.output.1)))?.stringValue
                else { return nil }
                extract[key] = ["path": .string(path)]
            }
        }
        guard !extract.isEmpty else { return nil }
        if let dedupe = members.last, dedupe["mode"]?.stringValue == "deduplicate" {
            website["mode"] = "on_change"
            if let lookback = dedupe["lookback"] { website["uniqueness_look_back"] = lookback }
        } else {
            website["mode"] = "all"
        }
        website["extract"] = .object(extract)
        for (key, value) in fetch { website[key] = value }
        return website
    }
}
