import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuarryCore
import QuarryStories

/// An error of the REST API, in one shape for every route:
/// `{"error": {"status": 404, "code": "not_found", "message": "…"}}` (and `problems` for a story that does not lint).
struct APIFailure: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var problems: [JSON] = []

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, problems: [JSON] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems
    }

    var json: JSON {
        var error: JSONObject = [
            "status": .int(Int64(status.code)), "code": .string(code), "message": .string(message),
        ]
        if !problems.isEmpty { error["problems"] = .array(problems) }
        return ["error": .object(error)]
    }

    func response(from request: Request, context: some RequestContext) throws -> Response { plainResponse() }

    func plainResponse() -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"quarry\"" }
        return Response(
            status: status,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: json.serializedBytes()))
        )
    }
}

/// One operation of `/api/v1`: the router registers it and the OpenAPI document describes it, from this one
/// table, so that the two cannot drift apart.
struct APIOperation<EngineClock: Clock>: Sendable where EngineClock.Duration == Duration {
    enum Body: Sendable {
        case none
        /// A story's YAML or JSON text.
        case story
        /// A JSON value of a component schema.
        case json(String)
    }

    var method: HTTPRequest.Method
    /// As OpenAPI writes it: `/stories/{story}`.
    var path: String
    var operationID: String
    var summary: String
    var role: WebRole
    var body: Body = .none
    var query: [(name: String, type: String, description: String)] = []
    /// The success status and the component schema of its body (nil: no body).
    var success: (status: Int, schema: String?)
    /// The error statuses it answers besides 401 and 403.
    var errors: [Int] = []
    var handle: @Sendable (Request, WebRequestContext, WebUser) async throws -> Response

    /// `:story` for Hummingbird's router.
    var routerPath: String {
        "/api/v1" + path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
    }

    var pathParameters: [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }
}

extension WebSite {
    func addAPIRoutes(to router: Router<WebRequestContext>) {
        router.get("/api/v1/openapi.json") { _, _ in
            Self.json(.ok, Self.openAPIDocument(apiOperations()))
        }
        for operation in apiOperations() {
            router.on(RouterPath(operation.routerPath), method: operation.method) { request, context in
                guard let user = context.user else {
                    throw APIFailure(
                        .unauthorized,
                        "unauthorized",
                        "an API token is required: Authorization: Bearer <token> (quarry users token NAME)"
                    )
                }
                guard user.role >= operation.role else {
                    throw APIFailure(
                        .forbidden,
                        "forbidden",
                        "user [\(user.username)] has the role \(user.role.name); this needs \(operation.role.name)"
                    )
                }
                return try await operation.handle(request, context, user)
            }
        }
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSON) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body.serializedBytes()))
        )
    }

    func apiOperations() -> [APIOperation<EngineClock>] {
        [
            APIOperation(
                method: .get,
                path: "/stories",
                operationID: "listStories",
                summary: "The stories",
                role: .viewer,
                success: (200, "StoryList")
            ) { _, _, _ in
                Self.json(
                    .ok,
                    [
                        "stories": .array(
                            engine.storyNames.compactMap { engine.story(named: $0) }.map { apiStory($0, source: false) }
                        )
                    ]
                )
            },
            APIOperation(
                method: .post,
                path: "/stories",
                operationID: "createStory",
                summary: "Add a story from its YAML or JSON text",
                role: .admin,
                body: .story,
                success: (201, "Story"),
                errors: [409, 422]
            ) { request, context, user in
                let text = try await bodyText(request, context)
                let story = try parseStory(text)
                if engine.story(named: story.name) != nil {
                    throw APIFailure(
                        .conflict,
                        "conflict",
                        "a story named '\(story.name)' exists: PUT /api/v1/stories/\(Story.snakeCase(story.name)) replaces it"
                    )
                }
                try await registerStory(story, text: text)
                context.logger.notice("story added", metadata: ["story": "\(story.name)", "user": "\(user.username)"])
                return Self.json(.created, apiStory(story, source: true))
            },
            APIOperation(
                method: .post,
                path: "/stories/lint",
                operationID: "lintStory",
                summary: "Check a story's text without saving it",
                role: .viewer,
                body: .story,
                success: (200, "LintResult")
            ) { request, context, _ in
                let text = try await bodyText(request, context)
                var problems: [StoryProblem]
                do {
                    let story = try Story(text: text)
                    problems = StoryLinter.problems(in: story, agents: engine.agents)
                } catch let error as StoryProblems {
                    problems = error.problems
                }
                let map = StorySourceMap(text: text)
                return Self.json(
                    .ok,
                    [
                        "valid": .bool(!problems.contains { !$0.isWarning }),
                        "problems": .array(problems.map { Self.problemJSON($0, map: map) }),
                    ]
                )
            },
            APIOperation(
                method: .get,
                path: "/stories/{story}",
                operationID: "getStory",
                summary: "A story, with its text",
                role: .viewer,
                success: (200, "Story"),
                errors: [404]
            ) { _, context, _ in
                Self.json(.ok, apiStory(try apiExistingStory(context), source: true))
            },
            APIOperation(
                method: .put,
                path: "/stories/{story}",
                operationID: "replaceStory",
                summary: "Replace a story (the text keeps its name)",
                role: .admin,
                body: .story,
                success: (200, "Story"),
                errors: [404, 422]
            ) { request, context, user in
                let existing = try apiExistingStory(context)
                let text = try await bodyText(request, context)
                let story = try parseStory(text)
                guard story.name == existing.name else {
                    throw APIFailure(
                        .unprocessableContent,
                        "name_changed",
                        "the text names the story '\(story.name)', not '\(existing.name)'"
                    )
                }
                try await registerStory(story, text: text)
                context.logger.notice(
                    "story replaced",
                    metadata: ["story": "\(story.name)", "user": "\(user.username)"]
                )
                return Self.json(.ok, apiStory(story, source: true))
            },
            APIOperation(
                method: .delete,
                path: "/stories/{story}",
                operationID: "deleteStory",
                summary: "Delete a story (its runs stay)",
                role: .admin,
                success: (200, "Acknowledged"),
                errors: [404]
            ) { _, context, user in
                let story = try apiExistingStory(context)
                try await engine.unregister(story: story.name)
                context.logger.notice(
                    "story deleted",
                    metadata: ["story": "\(story.name)", "user": "\(user.username)"]
                )
                return Self.json(.ok, ["acknowledged": true])
            },
            APIOperation(
                method: .post,
                path: "/stories/{story}/runs",
                operationID: "startRun",
                summary: "Start a run with a JSON payload as the entry event",
                role: .analyst,
                body: .json("Payload"),
                query: [
                    (
                        "dry_run", "boolean",
                        "Run without side effects (agents that send or write only say what they would do)"
                    )
                ],
                success: (201, "RunStarted"),
                errors: [400, 404]
            ) { request, context, user in
                let story = try apiExistingStory(context)
                let text = try await bodyText(request, context)
                let payload: JSON
                do {
                    payload =
                        text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                        ? .object([:]) : try JSON.parse(text)
                } catch {
                    throw APIFailure(.badRequest, "invalid_json", "the body is not JSON: \(error)")
                }
                guard case .object = payload else {
                    throw APIFailure(.badRequest, "invalid_payload", "the payload must be a JSON object")
                }
                let dryRun = request.uri.queryParameters.get("dry_run") == "true"
                let guid = try await startRun(
                    story,
                    payload: payload,
                    dryRun: dryRun,
                    by: user,
                    from: "the API",
                    context
                )
                return Self.json(.created, ["run": .string(guid), "url": .string(engine.baseURL + "/runs/\(guid)")])
            },
            APIOperation(
                method: .get,
                path: "/runs",
                operationID: "listRuns",
                summary: "The latest runs, newest first",
                role: .viewer,
                query: [
                    ("story", "string", "Only this story's runs"),
                    ("limit", "integer", "At most this many (1 to 1000, default 50)"),
                ],
                success: (200, "RunList")
            ) { request, _, _ in
                let storyName = request.uri.queryParameters.get("story").map { story($0)?.name ?? $0 }
                let limit = min(1000, max(1, request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 50))
                let runs = try await engine.runs(story: storyName, limit: limit)
                return Self.json(.ok, ["runs": .array(runs.map(\.json))])
            },
            APIOperation(
                method: .get,
                path: "/runs/{run}",
                operationID: "getRun",
                summary: "A run and its timeline",
                role: .viewer,
                success: (200, "Run"),
                errors: [404]
            ) { _, context, _ in
                let run = try await apiExistingRun(context)
                let timeline = try await engine.timeline(run.guid)
                var object = run.json.objectValue ?? [:]
                object["timeline"] = .array(timeline.map(\.json))
                return Self.json(.ok, .object(object))
            },
            APIOperation(
                method: .get,
                path: "/runs/{run}/events",
                operationID: "listRunEvents",
                summary: "A run's events in the order they were emitted (secrets redacted)",
                role: .viewer,
                query: [("agent", "string", "Only this agent's events")],
                success: (200, "EventList"),
                errors: [404]
            ) { request, context, _ in
                let run = try await apiExistingRun(context)
                let events = try await engine.events(run: run.guid, agent: request.uri.queryParameters.get("agent"))
                return Self.json(.ok, ["events": .array(events.map(\.json))])
            },
        ] + secretOperations(.credentials) + secretOperations(.resources) + interchangeOperations()
    }

    func secretOperations(_ kind: SecretKind) -> [APIOperation<EngineClock>] {
        let noun = kind.isSecret ? "credential" : "resource"
        let title = kind.isSecret ? "Credential" : "Resource"
        return [
            APIOperation(
                method: .get,
                path: "/\(kind.rawValue)",
                operationID: "list\(title)s",
                summary: kind.isSecret
                    ? "The credentials' names (values are write-only)" : "The resources and their values",
                role: kind.readRole,
                success: (200, kind.isSecret ? "NameList" : "ResourceList")
            ) { _, _, _ in
                if kind.isSecret {
                    return Self.json(
                        .ok,
                        ["credentials": .array(try engine.vault.credentialNames().map { .string($0) })]
                    )
                }
                var resources = JSONObject()
                for name in try engine.vault.resourceNames() {
                    resources[name] = try engine.vault.resource(name) ?? .null
                }
                return Self.json(.ok, ["resources": .object(resources)])
            },
            APIOperation(
                method: .put,
                path: "/\(kind.rawValue)/{name}",
                operationID: "put\(title)",
                summary: "Create or replace a \(noun): {\"value\": …}",
                role: .admin,
                body: .json("SecretValue"),
                success: (200, "Acknowledged"),
                errors: [400]
            ) { request, context, user in
                let name = context.parameters.get("name") ?? ""
                if let problem = Self.secretNameProblem(name) { throw APIFailure(.badRequest, "invalid_name", problem) }
                let body = try? JSON.parse(try await bodyText(request, context))
                guard let value = body?["value"] else {
                    throw APIFailure(.badRequest, "invalid_body", "expected a JSON object with a value: {\"value\": …}")
                }
                try setSecret(kind, name: name, value: value.stringValue ?? value.serialized())
                context.logger.notice("\(noun) saved", metadata: ["name": "\(name)", "user": "\(user.username)"])
                return Self.json(.ok, ["acknowledged": true])
            },
            APIOperation(
                method: .delete,
                path: "/\(kind.rawValue)/{name}",
                operationID: "delete\(title)",
                summary: "Delete a \(noun)",
                role: .admin,
                success: (200, "Acknowledged"),
                errors: [404]
            ) { _, context, user in
                let name = context.parameters.get("name") ?? ""
                guard try removeSecret(kind, name: name) else {
                    throw APIFailure(.notFound, "not_found", "no \(noun) named '\(name)'")
                }
                context.logger.notice("\(noun) deleted", metadata: ["name": "\(name)", "user": "\(user.username)"])
                return Self.json(.ok, ["acknowledged": true])
            },
        ]
    }

    // MARK: Helpers

    func bodyText(_ request: Request, _ context: WebRequestContext) async throws -> String {
        var request = request
        do {
            return String(buffer: try await request.collectBody(upTo: context.maxUploadSize))
        } catch {
            throw APIFailure(.contentTooLarge, "too_large", "the body is larger than \(context.maxUploadSize) bytes")
        }
    }

    func parseStory(_ text: String) throws -> Story {
        do {
            return try Story(text: text)
        } catch let problems as StoryProblems {
            throw Self.lintFailure(problems, text: text)
        }
    }

    func registerStory(_ story: Story, text: String) async throws {
        do {
            try await engine.register(story)
        } catch let problems as StoryProblems {
            throw Self.lintFailure(problems, text: text)
        }
    }

    static func lintFailure(_ problems: StoryProblems, text: String) -> APIFailure {
        let map = StorySourceMap(text: text)
        return APIFailure(
            .unprocessableContent,
            "invalid_story",
            "the story has \(problems.problems.count) problem\(problems.problems.count == 1 ? "" : "s")",
            problems: problems.problems.map { problemJSON($0, map: map) }
        )
    }

    static func problemJSON(_ problem: StoryProblem, map: StorySourceMap) -> JSON {
        var object: JSONObject = [
            "location": .string(problem.location), "message": .string(problem.message),
            "severity": .string(problem.isWarning ? "warning" : "error"),
        ]
        if let option = problem.option { object["option"] = .string(option) }
        if let position = map.position(of: problem) {
            object["line"] = .int(Int64(position.line))
            object["column"] = .int(Int64(position.column))
        }
        return .object(object)
    }

    func apiExistingStory(_ context: WebRequestContext) throws -> Story {
        let id = context.parameters.get("story") ?? ""
        guard let story = story(id) else { throw APIFailure(.notFound, "not_found", "no story named '\(id)'") }
        return story
    }

    func apiExistingRun(_ context: WebRequestContext) async throws -> RunRecord {
        let guid = (context.parameters.get("run") ?? "").lowercased()
        guard let run = try await engine.run(guid) else { throw APIFailure(.notFound, "not_found", "no run \(guid)") }
        return run
    }

    func apiStory(_ story: Story, source: Bool) -> JSON {
        let key = Story.snakeCase(story.name)
        var object: JSONObject = [
            "name": .string(story.name), "key": .string(key), "description": .string(story.description),
            "agents": .array(
                story.agents.map { agent in
                    [
                        "name": .string(agent.name), "key": .string(agent.key), "type": .string(agent.type),
                        "receives_from": .array(agent.sources.map { .string($0) }),
                    ]
                }
            ),
            "page_url": .string(engine.baseURL + Self.storyPath(story)),
        ]
        if let exit = story.exitAgent { object["exit_agent"] = .string(exit) }
        if let form = story.form {
            object["form"] = [
                "title": .string(form.title), "visibility": .string(form.isPublic ? "public" : "private"),
                "url": .string(engine.baseURL + Self.formPath(story)),
                "fields": .array(
                    form.fields.map { field in
                        var json: JSONObject = [
                            "name": .string(field.name), "label": .string(field.label), "type": .string(field.type),
                            "required": .bool(field.required),
                        ]
                        if let value = field.defaultValue { json["default"] = value }
                        if !field.options.isEmpty { json["options"] = .array(field.options.map { .string($0) }) }
                        return .object(json)
                    }
                ),
            ]
        }
        if story.agents.contains(where: \.isWebhook) { object["webhook_path"] = .string("/webhook/\(key)/{secret}") }
        if source { object["source"] = .string(story.text ?? story.source.serialized(pretty: true)) }
        return .object(object)
    }
}
