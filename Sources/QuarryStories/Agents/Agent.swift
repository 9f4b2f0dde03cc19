import Foundation
public import QuarryCore

/// What a type of agent is: its options (for the linter, the schema and the docs) and what it does with an event.
///
/// The engine renders the agent's options with the incoming event and the run's story context before each call,
/// so `receive` sees plain JSON. An agent is created once per story and called from several workers at once.
public protocol StoryAgent: Sendable {
    /// The `type` a story file names.
    static var type: String { get }
    static var summary: String { get }
    static var options: [OptionSpec] { get }
    /// The options that decide where what the agent sends goes (a URL, a cluster, recipients): the linter warns
    /// when input from outside decides one of them while a credential travels with it.
    static var destinationOptions: [String] { get }

    init(definition: AgentDefinition) throws(StoryProblem)

    /// Whether the engine hands this agent one event at a time (agents that keep memory between events, so that
    /// what one call remembers is there for the next).
    var isSerial: Bool { get }

    /// Handles one event; what it returns is emitted (stored, then delivered to the agent's receivers).
    func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput

    /// A timer the agent asked for (``AgentOutput/timers``) has come due.
    func timerFired(_ payload: JSON, context: AgentContext) async throws -> AgentOutput
}

extension StoryAgent {
    public static var destinationOptions: [String] { [] }

    public var isSerial: Bool { false }

    public func timerFired(_ payload: JSON, context: AgentContext) async throws -> AgentOutput { AgentOutput() }
}

/// One call of an agent: the event it receives and its options rendered for that event.
public struct AgentInput: Sendable {
    /// The payload of the received event.
    public var event: JSON
    /// The agent's options, rendered.
    public var options: JSON

    public func string(_ name: String) -> String? {
        switch options[name] {
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case .double(let number)?: return JSON.format(number)
        case .bool(let flag)?: return String(flag)
        default: return nil
        }
    }

    public func bool(_ name: String, default defaultValue: Bool = false) -> Bool {
        switch options[name] {
        case .bool(let flag)?: return flag
        case .string(let text)?: return ["true", "yes", "1"].contains(text.lowercased())
        case .int(let number)?: return number != 0
        default: return defaultValue
        }
    }

    /// An option that must be a whole number: fractions are truncated, and values past `Int`'s range (or not
    /// numbers at all, such as `NaN`) are nil, never a trap.
    public func integer(_ name: String) -> Int? {
        number(name).flatMap { Int64(checkedTruncating: $0) }.map { Int($0) }
    }

    public func number(_ name: String) -> Double? {
        switch options[name] {
        case .int(let number)?: return Double(number)
        case .double(let number)?: return number
        case .string(let text)?: return Double(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    /// A list option written as a list, or as one comma-separated string.
    public func list(_ name: String) -> [String] {
        switch options[name] {
        case .array(let items)?: return items.compactMap { $0.stringValue ?? ($0.isNull ? nil : $0.serialized()) }
        case .string(let text)?:
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        default: return []
        }
    }
}

/// What one call of an agent produced.
public struct AgentOutput: Sendable {
    public var events: [JSON]
    /// Seconds before the emitted events are delivered (the `delay` transform).
    public var deliverAfter: Double
    /// Timers to fire later on this agent: (seconds from now, payload handed back to ``StoryAgent/timerFired``,
    /// a key to cancel it by).
    public var timers: [(after: Double, payload: JSON, key: String)]
    /// Keys of this agent's pending timers (in this run) that are no longer needed.
    public var cancelledTimers: [String] = []
    /// Side effects a dry run recorded instead of performing.
    public var skipped: [String]

    public init(
        events: [JSON] = [],
        deliverAfter: Double = 0,
        timers: [(after: Double, payload: JSON, key: String)] = []
    ) {
        self.events = events
        self.deliverAfter = deliverAfter
        self.timers = timers
        self.skipped = []
    }
}

/// Failures an agent reports; the engine retries the retryable ones with backoff, up to the agent's attempts.
///
/// A struct with a code rather than an enum, so that kinds can be added without breaking agents written outside
/// this package (as `HTTPClientError` does).
public struct AgentError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        case retryable
        case failed
    }

    let code: Code
    /// What went wrong, as the timeline shows it; never a credential's value (the engine redacts them anyway).
    public let message: String

    /// May pass on another attempt (a refused connection, a 503).
    public static func retryable(_ message: String) -> AgentError { AgentError(code: .retryable, message: message) }

    /// Will not pass however often it is tried (a bad option value, a 400).
    public static func failed(_ message: String) -> AgentError { AgentError(code: .failed, message: message) }

    /// Whether another attempt may pass.
    public var isRetryable: Bool { code == .retryable }

    public var description: String { message }
}

/// One option of an agent type: for the linter, the JSON Schema and the documentation.
public struct OptionSpec: Sendable {
    public enum Kind: String, Sendable {
        case string, integer, number, boolean, array, object, any
        /// A list, or one comma-separated string.
        case list
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var summary: String
    /// The values a string option may take (empty: any).
    public var allowed: [String]

    public init(_ name: String, _ kind: Kind, required: Bool = false, allowed: [String] = [], _ summary: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.summary = summary
        self.allowed = allowed
    }
}
