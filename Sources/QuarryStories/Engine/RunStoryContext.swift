import QuarryCore
import QuarryLiquid

/// What a run's templates see: `{{ .agent.path }}` is the event of that agent upstream of the event being handled
/// (or, failing that, its latest event in the run); credentials and resources come from the vault.
///
/// The events are read before rendering (see `StoryEngine.namedEvents`), because templates render synchronously.
final class RunStoryContext: LiquidStoryContext {
    private let run: String
    /// The events of the agents the options name, by snake-cased name.
    private let events: [String: JSON]
    let credentials: CredentialAccess
    private let vault: Vault
    private let baseURL: String
    private let storyExists: @Sendable (String) -> Bool

    init(
        run: String,
        events: [String: JSON],
        credentials: CredentialAccess,
        vault: Vault,
        baseURL: String,
        storyExists: @escaping @Sendable (String) -> Bool
    ) {
        self.run = run
        self.events = events
        self.credentials = credentials
        self.vault = vault
        self.baseURL = baseURL
        self.storyExists = storyExists
    }

    func event(ofAgentNamed name: String) throws(LiquidError) -> JSON? {
        events[Story.snakeCase(name)]
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
            if let value = try vault.resource(name) { return value }
        } catch {
            throw LiquidError(.render, "\(error)")
        }
        throw LiquidError(.render, "no resource named '\(name)' (set it with: quarry resources set \(name) VALUE)")
    }

    func story(named name: String) throws(LiquidError) -> JSON {
        guard storyExists(name) else { throw LiquidError(.render, "no story named '\(name)'") }
        return .string(name)
    }

    var storyRunGUID: String { run }

    var storyRunLink: String { "\(baseURL)/runs/\(run)" }
}
