import Foundation
import GRDB
import QuarryCore
import QuarryLiquid

/// What a run's templates see: `{{ .agent.path }}` is the event of that agent upstream of the event being handled
/// (or, failing that, its latest event in the run); credentials and resources come from the vault.
final class RunStoryContext: LiquidStoryContext {
    private let engine: StoryEngine
    private let run: String
    private let lineage: [String: Int64]
    let credentials: CredentialAccess

    init(engine: StoryEngine, run: String, lineage: [String: Int64], credentials: CredentialAccess) {
        self.engine = engine
        self.run = run
        self.lineage = lineage
        self.credentials = credentials
    }

    /// An event's payload through the engine's cache of recent events; null when retention has removed it.
    func payload(of id: Int64) throws -> JSON {
        do {
            return try engine.loadEvent(id).payload
        } catch is StoryEngineError {
            return .null
        }
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
            value = try credentials.value(named: name)
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

    var storyRunLink: String { "\(engine.configuration.baseURL)/runs/\(run)" }
}
