import Foundation
import Hummingbird
import Logging
import QuarryCore
import QuarryStories

/// Tines exports and Huginn scenarios in and out of the web application: the story page's downloads, the upload on
/// `/stories`, and their REST API twins (docs/stories.md, "Import and export").
extension WebSite {
    /// Why an upload was not imported: the problems, and the YAML of the story that has them (nil when the file is
    /// not an export Quarry reads).
    struct ImportRefusal: Error {
        var problems: [StoryProblem]
        var yaml: String?
    }

    /// The stories of an export, each checked before any is registered, so that an export comes in whole or not
    /// at all. Stories are registered as the YAML `quarry story import` writes.
    func importStories(
        _ text: String,
        user: WebUser,
        _ context: WebRequestContext
    ) async -> Result<[Story], ImportRefusal> {
        var stories: [Story] = []
        do {
            for result in try StoryImport.stories(fromExport: text, agents: engine.agents) {
                let yaml = try StoryYAML.text(result.story)
                let story: Story
                do {
                    story = try Story(text: yaml)
                } catch let error as StoryProblems {
                    return .failure(ImportRefusal(problems: error.problems, yaml: yaml))
                }
                let problems = StoryLinter.problems(in: story, agents: engine.agents)
                if problems.contains(where: { !$0.isWarning }) {
                    return .failure(ImportRefusal(problems: problems, yaml: yaml))
                }
                stories.append(story)
            }
            for story in stories {
                try await engine.register(story)
                context.logger.notice(
                    "story imported",
                    metadata: ["story": "\(story.name)", "user": "\(user.username)"]
                )
            }
        } catch let error as StoryProblems {
            return .failure(ImportRefusal(problems: error.problems, yaml: nil))
        } catch {
            return .failure(ImportRefusal(problems: [StoryProblem("export", "\(error)")], yaml: nil))
        }
        return .success(stories)
    }

    /// `story` as a Tines export (with the stories its send_to_story agents run) or a Huginn scenario, as a download.
    func exportResponse(_ story: Story, format: StoryImport.Format) throws -> Response {
        let exported = try StoryExport.export(
            story,
            as: format,
            subStories: format == .tines ? story.subStories { engine.story(named: $0) ?? self.story($0) }.found : [],
            agents: engine.agents,
            exportedAt: Date()
        )
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/json",
                .contentDisposition: "attachment; filename=\"\(Story.snakeCase(story.name)).\(format.rawValue).json\"",
            ],
            body: .init(byteBuffer: ByteBuffer(string: exported.export.serialized(pretty: true) + "\n"))
        )
    }

    /// The REST API's import and export.
    func interchangeOperations() -> [APIOperation<EngineClock>] {
        [
            APIOperation(
                method: .post,
                path: "/stories/import",
                operationID: "importStories",
                summary: "Import a Tines story export or a Huginn scenario (its stories, all or none)",
                role: .admin,
                body: .json("ExternalExport"),
                success: (201, "StoryList"),
                errors: [422]
            ) { request, context, user in
                let text = try await bodyText(request, context)
                switch await importStories(text, user: user, context) {
                case .success(let stories):
                    return Self.json(.created, ["stories": .array(stories.map { apiStory($0, source: true) })])
                case .failure(let refusal):
                    throw Self.lintFailure(StoryProblems(refusal.problems), text: refusal.yaml ?? "")
                }
            },
            APIOperation(
                method: .get,
                path: "/stories/{story}/export",
                operationID: "exportStory",
                summary: "A story as a Tines story export or a Huginn scenario",
                role: .viewer,
                query: [("format", "string", "tines (the default) or huginn")],
                success: (200, "ExternalExport"),
                errors: [400, 404]
            ) { request, context, _ in
                let story = try apiExistingStory(context)
                let name = request.uri.queryParameters.get("format") ?? "tines"
                guard let format = StoryImport.Format(rawValue: name) else {
                    throw APIFailure(.badRequest, "unknown_format", "unknown export format '\(name)': tines or huginn")
                }
                return try exportResponse(story, format: format)
            },
        ]
    }
}
