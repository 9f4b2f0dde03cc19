public import QuarryCore

/// An agent's durable memory: what `deduplicate` has seen, what `implode` has gathered. Kept in the engine's
/// ``StoryStore``, per story and agent.
public struct AgentMemory: Sendable {
    let store: any StoryStore
    let story: String
    let agent: String
    /// The engine's clock, in seconds since 1970.
    let now: @Sendable () -> Double

    /// Adds `value` under `key` and returns everything stored under it, oldest first.
    public func append(_ value: JSON, to key: String) async throws -> [JSON] {
        try await store.appendMemory(value, story: story, agent: agent, key: key, at: now())
    }

    /// Everything stored under `key`, removed.
    public func take(_ key: String) async throws -> [JSON] {
        try await store.takeMemory(story: story, agent: agent, key: key)
    }

    /// Whether `key` was remembered among the last `lookback` keys of this agent, remembering it either way and
    /// forgetting what falls out of the lookback.
    public func seen(_ key: String, lookback: Int) async throws -> Bool {
        try await store.rememberKey(key, story: story, agent: agent, lookback: lookback, at: now())
    }
}
