import QuarryCore
public import QuarryStories

/// `send_to_story` — runs another story with `payload` as its entry event, waits for it to finish, and emits its
/// exit agent's event (the story's `exit_agent`, or the last event of an agent at its end), as Tines' Send to
/// Story does. The event is `{}` plus `story_run` and `status` when the sub-story ended without a result. In a
/// dry run the call is recorded, not made.
public struct SendToStoryAgent: StoryAgent {
    public static let type = "send_to_story"
    public static let summary = "Runs another story and emits its result."
    public static let options: [OptionSpec] = [
        OptionSpec("story", .string, required: true, "The story to run, by name."),
        OptionSpec("payload", .any, "Its entry event (default: the received event)."),
    ]

    public init(definition: AgentDefinition) throws(StoryProblem) {}

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        guard let name = input.string("story"), !name.isEmpty else { throw AgentError.failed("story rendered empty") }
        if context.dryRun {
            var output = AgentOutput(events: [["dry_run": true, "story": .string(name)]])
            output.skipped.append("story '\(name)' not run")
            return output
        }
        guard let runStory = context.runStory else { throw AgentError.failed("sub-stories are not available here") }
        return AgentOutput(events: [try await runStory(name, input.options["payload"] ?? input.event)])
    }
}
