public import Logging
public import QuarryCore

/// What an agent may reach while it works: the run it belongs to, the services the process provides (HTTP,
/// clusters, SMTP trust), the story's credentials and resources, and its own durable memory.
public struct AgentContext: Sendable {
    public var storyName: String
    public var agent: AgentDefinition
    public var runGUID: String
    /// Side effects (HTTP requests that are not GET, emails, sub-story calls) are recorded, not performed.
    public var dryRun: Bool
    /// What the process hands agents (HTTP client, default cluster, …): filled by whoever builds the engine.
    public var services: AgentServices
    public var memory: AgentMemory
    public var logger: Logger
    /// The attempt this call is (1 for the first).
    public var attempt: Int
    /// The variables the options were rendered with: the event's members and upstream agents' events by name.
    public var variables: JSONObject
    let vault: Vault
    /// The credentials this delivery may read (those its story declares) and where they may go.
    let credentials: CredentialAccess
    /// Runs another story to its end and returns its result (for `send_to_story`); nil where sub-stories cannot
    /// run.
    public internal(set) var runStory: (@Sendable (String, JSON) async throws -> JSON)?

    /// The value of credential `name`, or nil. Only credentials the story declares can be read; the engine redacts
    /// every credential's value from what it stores.
    public func credential(_ name: String) throws -> String? {
        do {
            return try credentials.value(named: name)
        } catch let error as CredentialAccessError {
            throw AgentError.failed(error.description)
        }
    }

    /// Call before connecting to `host`: fails when a credential read in this delivery (by a template or by
    /// ``credential(_:)``) carries allowed hosts and `host` is not one of them.
    public func checkDestination(_ host: String) throws {
        do {
            try credentials.checkDestination(host)
        } catch let error as CredentialAccessError {
            throw AgentError.failed(error.description)
        }
    }

    /// The value of global resource `name`, or nil.
    public func resource(_ name: String) throws -> JSON? { try vault.resource(name) }
}
