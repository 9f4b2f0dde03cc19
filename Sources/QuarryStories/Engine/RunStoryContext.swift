import Foundation
import GRDB
public import QuarryCore
import QuarryLiquid

/// What a run's templates see: `{{ .agent.path }}` is the event of that agent upstream of the event being handled
/// (or, failing that, its latest event in the run); credentials and resources come from the vault.
final class RunStoryContext: LiquidStoryContext, @unchecked Sendable {
    private let engine: StoryEngine
    private let story: Story
    private let run: String
    private let lineage: [String: Int64]
    private let lock = NSLock()
    private var payloads: [Int64: JSON] = [:]

    init(engine: StoryEngine, story: Story, run: String, lineage: [String: Int64]) {
        self.engine = engine
        self.story = story
        self.run = run
        self.lineage = lineage
    }

    func payload(of id: Int64) throws -> JSON {
        if let cached = lock.withLock({ payloads[id] }) { return cached }
        let row = try engine.database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT payload, payload_file FROM events WHERE id = ?", arguments: [id])
        }
        let payload =
            try row.map { try engine.database.payload(inline: $0["payload"], file: $0["payload_file"]) } ?? .null
        lock.withLock { payloads[id] = payload }
        return payload
    }

    func event(ofAgentNamed name: String) throws(LiquidError) -> JSON? {
        let key = Story.snakeCase(name)
        do {
            if let id = lineage[key] { return try payload(of: id) }
            let latest = try engine.database.pool.read { db in
                try Int64.fetchOne(
                    db,
                    sql: "SELECT id FROM events WHERE run = ? AND agent = ? AND error = 0 ORDER BY id DESC LIMIT 1",
                    arguments: [run, key]
                )
            }
            return try latest.map(payload(of:))
        } catch {
            throw LiquidError(.render, "cannot read the event of '\(name)': \(error)")
        }
    }

    func credential(named name: String) throws(LiquidError) -> String {
        let value: String?
        do {
            value = try engine.vault.credential(name)
        } catch {
            throw LiquidError(.render, "\(error)")
        }
        guard let value else {
            throw LiquidError(.render, "no credential named '\(name)' (set it with: quarry credentials set \(name))")
        }
        return value
    }

    func globalResource(named name: String) throws(LiquidError) -> JSON {
        do {
            if let value = try engine.vault.resource(name) { return value }
        } catch {
            throw LiquidError(.render, "\(error)")
        }
        throw LiquidError(.render, "no resource named '\(name)' (set it with: quarry resources set \(name) VALUE)")
    }

    func story(named name: String) throws(LiquidError) -> JSON {
        guard engine.story(named: name) != nil else { throw LiquidError(.render, "no story named '\(name)'") }
        return .string(name)
    }

    var storyRunGUID: String { run }

    var storyRunLink: String { "\(engine.services.baseURL)/runs/\(run)" }
}

/// Removes secret values from what the engine stores or logs.
enum Redaction {
    static let marker = "[redacted]"

    static func redact(_ text: String, secrets: [String]) -> String {
        var result = text
        for secret in secrets where secret.count >= 4 {
            result = result.replacingOccurrences(of: secret, with: marker)
        }
        return result
    }

    static func redact(_ value: JSON, secrets: [String]) -> JSON {
        guard secrets.contains(where: { $0.count >= 4 }) else { return value }
        switch value {
        case .string(let text): return .string(redact(text, secrets: secrets))
        case .array(let items): return .array(items.map { redact($0, secrets: secrets) })
        case .object(let object):
            var result = JSONObject()
            for (key, member) in object { result[key] = redact(member, secrets: secrets) }
            return .object(result)
        default: return value
        }
    }
}

/// An agent's durable memory: what `deduplicate` has seen, what `implode` has gathered.
public struct AgentMemory: Sendable {
    let database: StoryDatabase
    let story: String
    let agent: String

    /// Adds `value` under `key` and returns everything stored under it, oldest first.
    public func append(_ value: JSON, to key: String) throws -> [JSON] {
        try database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO memory(story, agent, key, value, created) VALUES (?, ?, ?, ?, ?)",
                arguments: [story, agent, key, value.serialized(), Date().timeIntervalSince1970]
            )
            return try String.fetchAll(
                db,
                sql: "SELECT value FROM memory WHERE story = ? AND agent = ? AND key = ? ORDER BY rowid",
                arguments: [story, agent, key]
            ).map { try JSON.parse($0) }
        }
    }

    /// Everything stored under `key`, removed.
    public func take(_ key: String) throws -> [JSON] {
        try database.pool.write { db in
            let values = try String.fetchAll(
                db,
                sql: "SELECT value FROM memory WHERE story = ? AND agent = ? AND key = ? ORDER BY rowid",
                arguments: [story, agent, key]
            ).map { try JSON.parse($0) }
            try db.execute(
                sql: "DELETE FROM memory WHERE story = ? AND agent = ? AND key = ?",
                arguments: [story, agent, key]
            )
            return values
        }
    }

    /// Whether `key` was remembered among the last `lookback` keys of this agent, remembering it either way and
    /// forgetting what falls out of the lookback.
    public func seen(_ key: String, lookback: Int) throws -> Bool {
        try database.pool.write { db in
            let found =
                try Bool.fetchOne(
                    db,
                    sql: """
                        SELECT EXISTS(SELECT 1 FROM (SELECT key FROM memory WHERE story = ? AND agent = ?
                        ORDER BY rowid DESC LIMIT ?) WHERE key = ?)
                        """,
                    arguments: [story, agent, lookback, key]
                ) ?? false
            try db.execute(
                sql: "INSERT INTO memory(story, agent, key, value, created) VALUES (?, ?, ?, 'null', ?)",
                arguments: [story, agent, key, Date().timeIntervalSince1970]
            )
            try db.execute(
                sql: """
                    DELETE FROM memory WHERE story = ? AND agent = ? AND rowid NOT IN
                    (SELECT rowid FROM memory WHERE story = ? AND agent = ? ORDER BY rowid DESC LIMIT ?)
                    """,
                arguments: [story, agent, story, agent, lookback]
            )
            return found
        }
    }
}
