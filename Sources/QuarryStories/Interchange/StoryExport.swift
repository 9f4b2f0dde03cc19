import Crypto
public import Foundation
public import QuarryCore

/// Writes a Quarry story as a Tines export (`schema_version` 3) or a Huginn scenario (`schema_version` 1) that
/// ``StoryImport`` reads back to the same story.
///
/// What the other product cannot hold travels beside what it can: an agent type it lacks (`elasticsearch`, `dns`,
/// a Tines-only transform mode in Huginn) is written as `Quarry::<type>` with its options, and Quarry's own agent
/// settings (retry, a non-default timeout, a description) as the agent's `quarry` member — Tines and Huginn ignore
/// both, and Quarry reads them back. Aliases become what they stand for there: agents sharing one name.
public enum StoryExport {
    /// What an export could not say in the other product's terms, beside the export itself.
    public struct Result: Sendable {
        public var export: JSON
        public var notes: [String]
    }

    public static func export(
        _ story: Story,
        as format: StoryImport.Format,
        subStories: [Story] = [],
        agents registry: AgentRegistry,
        exportedAt: Date? = nil
    ) throws -> Result {
        var notes: [String] = []
        var export = try exportOne(story, as: format, registry: registry, exportedAt: exportedAt, notes: &notes)
        if format == .tines {
            export["send_to_stories"] = .array(
                try subStories.map {
                    try .object(exportOne($0, as: .tines, registry: registry, exportedAt: exportedAt, notes: &notes))
                }
            )
        } else if !subStories.isEmpty {
            notes.append("Huginn scenarios do not embed sub-stories: export each one on its own")
        }
        return Result(export: .object(export), notes: notes)
    }

    private static func exportOne(
        _ story: Story,
        as format: StoryImport.Format,
        registry: AgentRegistry,
        exportedAt: Date?,
        notes: inout [String]
    ) throws -> JSONObject {
        // Aliases are agents sharing a name there; templates naming one of them name the shared name.
        var exportedName: [String: String] = [:]
        for agent in story.agents { exportedName[agent.key] = agent.name }
        var renamed: [(from: String, to: String)] = []
        for alias in story.aliases {
            for member in alias.members {
                exportedName[member] = alias.name
                renamed.append((member, alias.key))
            }
        }
        func exported(_ options: JSON) -> JSON {
            options.mapStrings { text in
                renamed.reduce(text) { StoryBuilder.renamingReferences(in: $0, from: $1.from, to: $1.to) }
            }
        }
        let guids = Dictionary(uniqueKeysWithValues: story.agents.map { ($0.key, guid(story.name, $0.key)) })
        let index = Dictionary(uniqueKeysWithValues: story.agents.enumerated().map { ($1.key, $0) })
        var agents: [JSON] = []
        var links: [JSON] = []
        var controlLinks: [JSON] = []
        var schedulers: [JSON] = []
        let chains = format == .huginn ? HuginnChains(story) : nil
        let byKey = Dictionary(story.agents.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for agent in story.agents {
            if let chains, chains.absorbed.contains(agent.key) { continue }
            // A chain is written as the agent it came from: named as its last member, which holds its settings.
            let last = chains?.chains[agent.key].flatMap { byKey[$0.members.last!] } ?? agent
            var object: JSONObject = ["type": "", "name": .string(exportedName[last.key] ?? last.name)]
            object["disabled"] = .bool(last.disabled)
            object["guid"] = .string(guids[last.key]!)
            var options = exported(agent.options).objectValue ?? [:]
            var extras = JSONObject()
            var timeout = agent.timeout
            switch format {
            case .tines:
                object["type"] = .string(tinesType(agent, options: &options, timeout: &timeout))
                object["options"] = .object(options)
                object["schedule"] =
                    agent.schedules.isEmpty
                    ? .null
                    : .array(agent.schedules.map { ["cron": .string($0.cron), "timezone": .string($0.timeZone)] })
            case .huginn:
                let (type, huginnOptions, scheduleName) = try chains!.huginnAgent(
                    agent,
                    options: options,
                    renamed: exported
                )
                object["type"] = .string(type)
                object["options"] = .object(huginnOptions)
                object["schedule"] = scheduleName.map(JSON.string) ?? .null
                if scheduleName == nil && !agent.schedules.isEmpty {
                    // A cron expression Huginn's schedule names do not cover: a SchedulerAgent runs the agent.
                    for schedule in agent.schedules {
                        let zone = schedule.timeZone == "UTC" ? "" : " \(schedule.timeZone)"
                        controlLinks.append([
                            "controller": .int(Int64(story.agents.count - chains!.absorbed.count + schedulers.count)),
                            "control_target": .int(Int64(chains!.position(of: agent.key)!)),
                        ])
                        schedulers.append([
                            "type": "Agents::SchedulerAgent",
                            "name": .string("Schedule \(exportedName[agent.key] ?? agent.name)"),
                            "disabled": false,
                            "guid": .string(guid(story.name, "schedule/\(agent.key)/\(schedule.cron)")),
                            "options": ["action": "run", "schedule": .string(schedule.cron + zone)],
                            "schedule": .null,
                            "keep_events_for": 0,
                        ])
                    }
                }
            }
            object["keep_events_for"] = .int(Int64(last.keepEventsFor ?? 0))
            let written = story.source["agents"]?[index[last.key]!]
            if timeout != 60 { extras["timeout"] = written?["timeout"] ?? .int(Int64(timeout)) }
            if let retry = written?["retry"] { extras["retry"] = retry }
            if let description = written?["description"]?.stringValue {
                extras["description"] = .string(description)
            }
            // Options the other product cannot hold (an email's SMTP server, allowed_recipients) travel whole.
            let original = exported(last.options).objectValue ?? [:]
            if chains?.chains[agent.key] == nil,
                importedOptions(.object(object), format: format, registry: registry) != original
            {
                extras["options"] = .object(original)
            }
            if !extras.isEmpty { object["quarry"] = .object(extras) }
            agents.append(.object(object))
        }
        for agent in story.agents {
            if let chains, chains.absorbed.contains(agent.key) { continue }
            let receiver = chains?.position(of: agent.key) ?? index[agent.key]!
            for source in agent.sources {
                let position = chains?.position(of: source) ?? index[source]
                guard let position else { continue }
                links.append(["source": .int(Int64(position)), "receiver": .int(Int64(receiver))])
            }
        }
        var export = JSONObject()
        export["schema_version"] = format == .tines ? 3 : 1
        export["name"] = .string(story.name)
        export["description"] = story.description.isEmpty ? .null : .string(story.description)
        export["guid"] = .string(guid(story.name, ""))
        if let exportedAt { export["exported_at"] = .string(ISO8601DateFormatter().string(from: exportedAt)) }
        export["agents"] = .array(agents + schedulers)
        export["links"] = .array(links)
        var quarry = JSONObject()
        if story.maxEvents != 100_000 { quarry["max_events"] = .int(Int64(story.maxEvents)) }
        if story.maxRunEvents != 10_000 { quarry["max_run_events"] = .int(Int64(story.maxRunEvents)) }
        // Declarations the templates do not imply (an order, a resource only lint should ask for) are kept as written.
        let used = StoryImport.secretsUsed(
            in: agents.compactMap { agent in
                (agent["quarry"]?["options"]).map { ["options": $0] } ?? agent.objectValue
            }
        )
        if story.credentials != used.credentials { quarry["credentials"] = .array(story.credentials.map(JSON.string)) }
        if story.resources != used.resources { quarry["resources"] = .array(story.resources.map(JSON.string)) }
        switch format {
        case .tines:
            var layout = JSONObject()
            for agent in story.agents {
                if let point = story.source["layout"]?[agent.name], story.layout[agent.key] != nil {
                    layout[guids[agent.key]!] = point
                }
            }
            export["diagram_layout"] = .string(JSON.object(layout).serialized())
            export["send_to_story_enabled"] = .bool(story.exitAgent != nil)
            export["entry_agent_guid"] = story.entryAgents.first.map { .string(guids[$0.key]!) } ?? .null
            export["exit_agent_guid"] = story.exitAgent.flatMap { guids[$0] }.map(JSON.string) ?? .null
            export["form"] = tinesForm(story, guids: guids)
            if let form = story.source["form"], TinesMapping.form(export["form"], agentName: { _ in nil }) != form {
                quarry["form"] = form
            }
        case .huginn:
            export["control_links"] = .array(controlLinks)
            export["source_url"] = false
            if let exit = story.exitAgent { quarry["exit_agent"] = .string(exportedName[exit] ?? exit) }
            if story.form != nil, let form = story.source["form"] { quarry["form"] = form }
            if !story.layout.isEmpty, let layout = story.source["layout"] { quarry["layout"] = layout }
            if story.agents.contains(where: { $0.type == "email" }) {
                notes.append(
                    "Huginn sends email through its own SMTP settings: the email agents' SMTP options are left out"
                )
            }
        }
        if !quarry.isEmpty { export["quarry"] = .object(quarry) }
        return export
    }

    /// The options ``StoryImport`` would read from an exported agent.
    private static func importedOptions(
        _ agent: JSON,
        format: StoryImport.Format,
        registry: AgentRegistry
    ) -> JSONObject? {
        var builder = StoryBuilder(registry: registry)
        let type = agent["type"]?.stringValue ?? ""
        let drafts: [DraftAgent]
        if type.hasPrefix("Quarry::") {
            drafts = [StoryImport.quarryAgent(agent, type: String(type.dropFirst(8)), builder: builder)]
        } else if format == .tines {
            drafts = TinesMapping.agents(agent, type: type, location: "", builder: &builder)
        } else {
            drafts = HuginnMapping.agents(agent, type: type, location: "", builder: &builder)
        }
        return drafts.count == 1 ? drafts[0].options : nil
    }

    /// Tines' type for `agent`, adjusting options Tines holds differently (the email's SMTP server is Tines';
    /// an HTTP request's timeout is its option).
    private static func tinesType(_ agent: AgentDefinition, options: inout JSONObject, timeout: inout Double) -> String
    {
        if agent.disabled && agent.type.hasPrefix("Agents::") { return agent.type }
        let mode = options["mode"]?.stringValue
        guard let type = TinesMapping.types.first(where: { $0.value == agent.type })?.key,
            !(agent.type == "transform" && TinesMapping.unsupportedModes.contains(mode ?? ""))
        else { return "Quarry::\(agent.type)" }
        switch agent.type {
        case "email": options = TinesMapping.emailWithoutSMTP(options)
        case "http_request" where timeout != 60:
            options["timeout"] = .int(Int64(timeout))
            timeout = 60
        default: break
        }
        return type
    }

    private static func tinesForm(_ story: Story, guids: [String: String]) -> JSON {
        guard let form = story.form else { return .null }
        let entry = story.entryAgents.first { $0.isWebhook } ?? story.entryAgents.first
        return [
            "name": .string(form.title), "description": .string(form.description),
            "fields": .array(
                form.fields.map { field in
                    var object: JSONObject = [
                        "name": .string(field.label), "description": "",
                        "field_type": .string(TinesMapping.tinesFieldType(field.type)),
                        "required": .bool(field.required),
                    ]
                    if !field.options.isEmpty { object["options"] = .array(field.options.map(JSON.string)) }
                    return .object(object)
                }
            ),
            "visibility": .string(form.isPublic ? "world" : "tenant"),
            "agent_guid": entry.map { .string(guids[$0.key]!) } ?? .null,
            "success_message": "Thank you for your submission",
        ]
    }

    /// A stable guid per story and agent, so that exporting twice writes the same file.
    static func guid(_ story: String, _ agent: String) -> String {
        let digest = SHA256.hash(data: Data("\(story)/\(agent)".utf8))
        return digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}

extension Story {
    /// The stories this one's `send_to_story` agents run, and theirs, found by name with `lookup`; with the names
    /// `lookup` does not know and the agent naming each. A Tines export embeds them.
    public func subStories(
        _ lookup: (String) -> Story?
    ) -> (found: [Story], missing: [(agent: AgentDefinition, name: String)]) {
        var found: [Story] = []
        var missing: [(AgentDefinition, String)] = []
        var seen: Set = [Story.snakeCase(name)]
        var pending = [self]
        while let next = pending.popLast() {
            for agent in next.agents where agent.type == "send_to_story" {
                let option = agent.options["story"]?.stringValue ?? ""
                let name = option.firstMatch(of: /\{%-?\s*story\s+(.+?)\s*-?%\}/).map { String($0.output.1) } ?? option
                guard seen.insert(Story.snakeCase(name)).inserted else { continue }
                guard let sub = lookup(name) else {
                    missing.append((agent, name))
                    continue
                }
                found.append(sub)
                pending.append(sub)
            }
        }
        return (found, missing)
    }
}
