import Foundation
import GRDB
public import QuarryCore

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
