import Foundation
public import QuarryCore

/// Turns a Tines story export (`schema_version` 3, 2020–2021) or a Huginn scenario (`schema_version` 1) into Quarry
/// stories: the story itself and, for Tines' embedded `send_to_stories`, one story per sub-story.
///
/// Both formats list agents with a type, options, guid, schedule and `keep_events_for`, and link them by position.
/// The import is deterministic (the same file gives the same YAML), so that imported stories can live in git:
/// - agent types are mapped (``TinesMapping``, ``HuginnMapping``); one Huginn agent may become a short chain of
///   Quarry agents (a JSON WebsiteAgent is a request, an explode and the shaping), the last keeping its name;
/// - a type with no equivalent becomes a disabled agent that keeps its type and options, which lint reports;
/// - Tines' string booleans and numbers become booleans and numbers where the Quarry option takes one;
/// - repeated names become `Name 1`, `Name 2` …: a template naming them is rewritten to the one upstream of it, or,
///   when several are (a paging loop), to a story alias that reads the nearest (``StoryAlias``);
/// - the credentials and resources templates use are declared; the form, the layout (as diagram hints),
///   schedules and `keep_events_for` are kept.
public enum StoryImport {
    /// One imported story: its tree (as a story file holds it) and what the import could not carry over.
    public struct Result: Sendable {
        public var story: JSON
        /// Options and values kept as they were but that Quarry does not run: lint reports them too.
        public var problems: [StoryProblem]
        public var name: String { story["name"]?.stringValue ?? "" }
    }

    public enum Format: String, Sendable, CaseIterable {
        case tines, huginn
    }

    /// The stories of an export: the story first, then its sub-stories.
    public static func stories(fromExport text: String, agents registry: AgentRegistry) throws -> [Result] {
        let tree: JSON
        do {
            tree = try JSON.parse(text)
        } catch {
            throw StoryProblems([StoryProblem("export", "not valid JSON: \(error)")])
        }
        return try stories(fromExport: tree, agents: registry)
    }

    public static func stories(fromExport tree: JSON, agents registry: AgentRegistry) throws -> [Result] {
        let format = try format(of: tree)
        var results: [Result] = []
        try importStory(tree, format: format, registry: registry, into: &results)
        return results
    }

    /// Which format an export is in, or why it cannot be imported.
    public static func format(of tree: JSON) throws(StoryProblems) -> Format {
        guard tree.objectValue != nil, tree["agents"]?.arrayValue != nil else {
            throw StoryProblems([
                StoryProblem(
                    "export",
                    "not a Tines story export or a Huginn scenario (expected an object with 'agents' and 'links')"
                )
            ])
        }
        let version = tree["schema_version"]?.intValue
        let huginnKeys = ["control_links", "tag_fg_color", "tag_bg_color", "source_url", "icon"]
        if huginnKeys.contains(where: { tree[$0] != nil }) {
            guard version == 1 else {
                throw StoryProblems([
                    StoryProblem(
                        "export",
                        option: "schema_version",
                        "a Huginn scenario of schema_version \(version.map(String.init) ?? "none"): Quarry imports "
                            + "Huginn's schema_version 1"
                    )
                ])
            }
            return .huginn
        }
        guard let version, (1...3).contains(version) else {
            throw StoryProblems([
                StoryProblem(
                    "export",
                    option: "schema_version",
                    "a Tines export of schema_version \(version.map(String.init) ?? "none"), from a newer Tines "
                        + "whose actions use <<action.path>> references and =FORMULA expressions: Quarry imports "
                        + "Tines exports up to schema_version 3 (2020–2021, Liquid templates) and Huginn scenarios "
                        + "(schema_version 1)"
                )
            ])
        }
        return .tines
    }

    private static func importStory(
        _ tree: JSON,
        format: Format,
        registry: AgentRegistry,
        into results: inout [Result]
    ) throws {
        var builder = StoryBuilder(registry: registry)
        let agents = tree["agents"]?.arrayValue ?? []
        for (index, agent) in agents.enumerated() {
            let location = "agents[\(index)] (\(agent["name"]?.stringValue ?? ""))"
            guard agent.objectValue != nil, let type = agent["type"]?.stringValue else {
                throw StoryProblems([StoryProblem(location, option: "type", "an agent needs a type")])
            }
            if format == .tines {
                try refuseNewerSyntax(agent["options"] ?? .null, location: location, path: "options")
            }
            var chain: [DraftAgent]
            if type.hasPrefix("Quarry::"), registry[String(type.dropFirst(8))] != nil {
                chain = [quarryAgent(agent, type: String(type.dropFirst(8)), builder: builder)]
            } else {
                switch format {
                case .tines: chain = TinesMapping.agents(agent, type: type, location: location, builder: &builder)
                case .huginn: chain = HuginnMapping.agents(agent, type: type, location: location, builder: &builder)
                }
            }
            if let extras = agent["quarry"], !chain.isEmpty {
                let last = chain.count - 1
                if let timeout = extras["timeout"] { chain[last].timeout = timeout }
                if let retry = extras["retry"] { chain[last].retry = retry }
                if let description = extras["description"]?.stringValue { chain[last].description = description }
                if let options = extras["options"]?.objectValue, chain.count == 1 { chain[0].options = options }
            }
            builder.add(chain, origin: index)
        }
        for (index, link) in (tree["links"]?.arrayValue ?? []).enumerated() {
            guard let source = link["source"]?.intValue, let receiver = link["receiver"]?.intValue,
                agents.indices.contains(Int(source)), agents.indices.contains(Int(receiver))
            else {
                throw StoryProblems([
                    StoryProblem("links[\(index)]", "a link is {source, receiver}, positions in the agent list")
                ])
            }
            builder.link(from: Int(source), to: Int(receiver))
        }
        if format == .huginn {
            HuginnMapping.applyControlLinks(tree, agents: agents, builder: &builder)
        }
        let extras = tree["quarry"]?.objectValue ?? [:]
        var story = JSONObject()
        let name = tree["name"]?.stringValue ?? ""
        story["name"] = .string(name.isEmpty ? "Imported story" : name)
        if let description = tree["description"]?.stringValue, !description.isEmpty {
            story["description"] = .string(description)
        }
        let guids = agents.map { $0["guid"]?.stringValue ?? "" }
        let entryGUID = tree["entry_agent_guid"]?.stringValue
        let exitGUID = tree["exit_agent_guid"]?.stringValue ?? tree["exit_agent_guids"]?[0]?.stringValue
        let built = builder.finish(entryOrigin: entryGUID.flatMap { guids.firstIndex(of: $0) })
        if let exitGUID, let origin = guids.firstIndex(of: exitGUID), let exit = built.name(ofOrigin: origin) {
            story["exit_agent"] = .string(exit)
        } else if let exit = extras["exit_agent"] {
            story["exit_agent"] = exit
        }
        let (credentials, resources) = secretsUsed(in: built.agents)
        if let declared = extras["credentials"] {
            story["credentials"] = declared
        } else if !credentials.isEmpty {
            story["credentials"] = .array(credentials.map(JSON.string))
        }
        if let declared = extras["resources"] {
            story["resources"] = declared
        } else if !resources.isEmpty {
            story["resources"] = .array(resources.map(JSON.string))
        }
        if let maximum = extras["max_events"] { story["max_events"] = maximum }
        if let maximum = extras["max_run_events"] { story["max_run_events"] = maximum }
        if !built.aliases.isEmpty { story["aliases"] = .object(built.aliases) }
        if let form = extras["form"] {
            story["form"] = form
        } else if format == .tines,
            let form = TinesMapping.form(
                tree["form"],
                agentName: { guid in
                    guids.firstIndex(of: guid).flatMap(built.name(ofOrigin:))
                }
            )
        {
            story["form"] = form
        }
        story["agents"] = .array(built.agents.map { .object($0) })
        if let layout = layout(tree["diagram_layout"], guids: guids, built: built) ?? extras["layout"] {
            story["layout"] = layout
        }
        var problems: [StoryProblem] = []
        let parsed = Story(json: .object(story), problems: &problems)
        problems += StoryLinter.problems(in: parsed, agents: registry)
        results.append(Result(story: .object(story), problems: problems))
        for (index, sub) in (tree["send_to_stories"]?.arrayValue ?? []).enumerated() {
            do {
                try importStory(sub, format: try Self.format(of: sub), registry: registry, into: &results)
            } catch let error as StoryProblems {
                throw StoryProblems(
                    error.problems.map {
                        var problem = $0
                        problem.location = "send_to_stories[\(index)]: \(problem.location)"
                        return problem
                    }
                )
            }
        }
    }

    /// An agent an export wrote as `Quarry::<type>` because the other product has no such type: as it was.
    static func quarryAgent(_ agent: JSON, type: String, builder: StoryBuilder) -> DraftAgent {
        var draft = DraftAgent(
            name: agent["name"]?.stringValue ?? type,
            type: type,
            options: builder.coerced(agent["options"]?.objectValue ?? [:], type: type)
        )
        draft.disabled = agent["disabled"]?.boolValue ?? false
        draft.keepEventsFor = TinesMapping.keepEventsFor(agent["keep_events_for"])
        if let name = agent["schedule"]?.stringValue {
            draft.schedule = HuginnMapping.schedules.first { $0.name == name }.map { .string($0.cron) }
        } else {
            draft.schedule = TinesMapping.schedule(agent["schedule"])
        }
        return draft
    }

    /// Tines' later syntax (`<<action.path>>`, `=FORMULA`) is not Liquid: such an export is refused, naming where.
    private static func refuseNewerSyntax(_ value: JSON, location: String, path: String) throws {
        switch value {
        case .string(let text):
            if text.contains(/<<[A-Za-z_][A-Za-z0-9_.\[\]"' ]*>>/) || text.hasPrefix("=") && text.count > 1 {
                throw StoryProblems([
                    StoryProblem(
                        location,
                        option: path,
                        "'\(text.truncatedForMessage)' is Tines' newer formula syntax (<<action.path>>, =FORMULA), "
                            + "which Quarry does not run: Quarry imports Tines exports whose options are Liquid "
                            + "templates (schema_version 3)"
                    )
                ])
            }
        case .array(let items):
            for (index, item) in items.enumerated() {
                try refuseNewerSyntax(item, location: location, path: "\(path)[\(index)]")
            }
        case .object(let object):
            for (key, item) in object { try refuseNewerSyntax(item, location: location, path: "\(path).\(key)") }
        default: break
        }
    }

    /// `diagram_layout` (a JSON text of guid → [x, y]) as `layout: {agent name: [x, y]}`, in agent order.
    private static func layout(_ value: JSON?, guids: [String], built: StoryBuilder.Built) -> JSON? {
        var positions: JSON?
        if let text = value?.stringValue { positions = try? JSON.parse(text) }
        if value?.objectValue != nil { positions = value }
        guard let positions, positions.objectValue != nil else { return nil }
        var layout = JSONObject()
        for (origin, guid) in guids.enumerated() {
            guard let point = positions[guid]?.arrayValue, point.count == 2,
                point.allSatisfy({ $0.doubleValue != nil }),
                let name = built.name(ofOrigin: origin)
            else { continue }
            layout[name] = .array(point)
        }
        return layout.isEmpty ? nil : .object(layout)
    }

    /// Schedules as a story writes them, whichever product they came from: one UTC expression as itself, one in
    /// another zone as `{cron, timezone}`, several as a list.
    static func schedule(_ schedules: [(cron: String, timeZone: String)]) -> JSON? {
        let items: [JSON] = schedules.map { cron, zone in
            zone == "UTC" ? .string(cron) : ["cron": .string(cron), "timezone": .string(zone)]
        }
        if items.count > 1 { return .array(items) }
        return items.first
    }

    /// The credentials and resources the agents' options use, sorted (found as lint finds them).
    static func secretsUsed(in agents: [JSONObject]) -> (credentials: [String], resources: [String]) {
        var credentials = Set<String>()
        var resources = Set<String>()
        for agent in agents {
            let used = StoryLinter.secretsUsed(in: agent["options"] ?? .null)
            credentials.formUnion(used.credentials)
            resources.formUnion(used.resources)
        }
        return (credentials.sorted(), resources.sorted())
    }
}

extension String {
    /// The text, cut to 60 characters, for an error message.
    var truncatedForMessage: String { count > 60 ? String(prefix(57)) + "…" : self }
}
