/// Why the engine refused a request or could not go on, with the story, agent and run it concerns.
///
/// A struct with a code rather than an enum, as swift-nio's errors are, so that kinds can be added without breaking
/// callers.
public struct StoryEngineError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String

        /// No story of that name is registered.
        public static let unknownStory = Code(description: "unknownStory")
        /// The story has no agent of that name.
        public static let unknownAgent = Code(description: "unknownAgent")
        /// The story has no agent that nothing feeds, to start a run at.
        public static let noEntryAgent = Code(description: "noEntryAgent")
        /// No run has that guid.
        public static let unknownRun = Code(description: "unknownRun")
        /// The event a delivery carries was removed by retention before the delivery.
        public static let eventRemoved = Code(description: "eventRemoved")
    }

    public var code: Code
    public var story: String?
    public var agent: String?
    public var run: String?
    /// What went wrong, in words that already name the story, agent or run.
    public var message: String

    public var description: String { message }

    init(_ code: Code, _ message: String, story: String? = nil, agent: String? = nil, run: String? = nil) {
        self.code = code
        self.message = message
        self.story = story
        self.agent = agent
        self.run = run
    }
}
