import Foundation
import GRDB
public import QuarryCore

/// Removes secret values from what the engine stores or logs: the values themselves in any letter case, and the
/// forms an agent or a template commonly turns them into — base64 (standard and URL-safe, at any alignment inside a
/// longer encoded text such as a Basic `Authorization` header), hex, percent-encoding and JSON string escaping.
struct Redaction: Sendable {
    static let marker = "[redacted]"

    /// What is replaced, longest first so that a longer form is never half replaced by a shorter one.
    let patterns: [String]

    init(secrets: [String]) {
        var patterns = Set<String>()
        for secret in secrets where secret.count >= 4 {
            patterns.insert(secret)
            let bytes = Array(secret.utf8)
            patterns.insert(bytes.map { String(format: "%02x", $0) }.joined())
            if let escaped = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                patterns.insert(escaped)
            }
            let json = JSON.string(secret).serialized()
            patterns.insert(String(json.dropFirst().dropLast()))
            for encoded in Self.base64Forms(bytes) where encoded.count >= 6 {
                patterns.insert(encoded)
                patterns.insert(
                    encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                )
            }
        }
        self.patterns = patterns.sorted { $0.count > $1.count }
    }

    /// The base64 characters that encode `bytes` whatever bytes come before and after them: for each of the three
    /// alignments, the characters that depend on `bytes` alone.
    static func base64Forms(_ bytes: [UInt8]) -> [String] {
        (0..<3).map { offset in
            let encoded = Data(Array(repeating: 0, count: offset) + bytes).base64EncodedString()
            let characters = Array(encoded.replacingOccurrences(of: "=", with: ""))
            // Leading characters mix in the filler bytes; trailing ones may mix in whatever follows.
            let lead = [0, 2, 3][offset]
            let total = offset + bytes.count
            let trail = total % 3 == 0 ? 0 : total % 3 + 1
            guard characters.count > lead + trail else { return "" }
            return String(characters[lead..<(characters.count - trail)])
        }
    }

    func redact(_ text: String) -> String {
        var result = text
        for pattern in patterns where result.range(of: pattern, options: .caseInsensitive) != nil {
            result = result.replacingOccurrences(of: pattern, with: Self.marker, options: .caseInsensitive)
        }
        return result
    }

    func redact(_ value: JSON) -> JSON {
        guard !patterns.isEmpty else { return value }
        switch value {
        case .string(let text): return .string(redact(text))
        case .array(let items): return .array(items.map(redact))
        case .object(let object):
            var result = JSONObject()
            for (key, member) in object { result[key] = redact(member) }
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
