/// The agent types a process knows, by the `type` a story names: the linter checks stories against them and the
/// engine creates agents from them. The set is open: callers register the built-in agents (`QuarryAgents`) and any
/// of their own.
///
/// ```swift
/// var agents = AgentRegistry()
/// agents.register(MyAgent.self)
/// let problems = StoryLinter.problems(in: story, agents: agents)
/// ```
public struct AgentRegistry: Sendable {
    /// In the order they were registered (the order the documentation and the schema list them).
    public private(set) var types: [any StoryAgent.Type] = []
    private var byName: [String: any StoryAgent.Type] = [:]

    public init(_ types: [any StoryAgent.Type] = []) {
        for type in types { register(type) }
    }

    /// Adds `type`, replacing a type registered before under the same name.
    public mutating func register(_ type: any StoryAgent.Type) {
        if byName[type.type] != nil { types.removeAll { $0.type == type.type } }
        types.append(type)
        byName[type.type] = type
    }

    /// The agent type a story names `name`, or nil.
    public subscript(_ name: String) -> (any StoryAgent.Type)? { byName[name] }
}
