import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuarryCore
import QuarryElasticsearchAPI
import QuarryStories

// MARK: Signing in

extension WebSite {
    func addSignInRoutes(to router: Router<WebRequestContext>) {
        router.get("/login") { request, context in
            if context.user?.session != nil {
                return Response.redirect(to: Self.localTarget(request.uri.queryParameters.get("next")))
            }
            return signInPage(request, next: request.uri.queryParameters.get("next") ?? "", error: nil)
        }
        router.post("/login") { request, context in
            let form = try await formFields(request, context)
            // The sign-in form is shown before there is a session: its token is the form cookie's.
            var anonymous = context
            anonymous.user = nil
            try checkCSRF(form, request, anonymous)
            let username = form["username"] ?? ""
            let password = form["password"] ?? ""
            let address = context.remoteAddress?.ipAddress
            let delay = security.attemptDelay(
                authorization: ElasticsearchSecurity.signInKey(username: username),
                remoteAddress: address
            )
            if delay > .zero { try await Task.sleep(for: delay) }
            guard let authentication = security.signIn(username: username, password: password, remoteAddress: address)
            else {
                context.logger.notice("web sign-in failed", metadata: ["user": "\(username)"])
                return signInPage(
                    request,
                    next: form["next"] ?? "",
                    error: "Wrong user name or password.",
                    username: username,
                    status: .unauthorized
                )
            }
            guard WebRole(roles: authentication.roles) != nil else {
                return signInPage(
                    request,
                    next: form["next"] ?? "",
                    error: "This user has no role for the web application (admin, analyst or viewer).",
                    username: username,
                    status: .forbidden
                )
            }
            let session = try security.startSession(for: authentication.username)
            context.logger.info("web sign-in", metadata: ["user": "\(authentication.username)"])
            var response = Response.redirect(to: Self.localTarget(form["next"]))
            response.setCookie(
                cookie(
                    Self.sessionCookie,
                    session,
                    maxAge: Int(ElasticsearchSecurity.sessionLifetime.components.seconds)
                )
            )
            return response
        }
        router.post("/logout") { request, context in
            let form = try await formFields(request, context)
            if let session = context.user?.session {
                try checkCSRF(form, request, context)
                try security.endSession(session)
            }
            var response = Response.redirect(to: "/login")
            response.setCookie(cookie(Self.sessionCookie, "", maxAge: 0))
            return response
        }
    }

    func signInPage(
        _ request: Request,
        next: String,
        error: String?,
        username: String = "",
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let token = formToken(request)
        var values: [String: Any] = ["csrf": token.value, "next": next, "username": username]
        if let error { values["error"] = error }
        var response = page("login", title: "Sign in", values, user: nil, status: status)
        if token.isNew { response.setCookie(cookie(Self.formCookie, token.value, maxAge: nil)) }
        return response
    }

    /// A `next` parameter that stays on this site (`/runs`, never `//evil.example` or `https://…`).
    static func localTarget(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"),
            !next.contains(where: { $0.isNewline })
        else { return "/stories" }
        return next
    }
}

// MARK: Stories

extension WebSite {
    func addStoryRoutes(to router: Router<WebRequestContext>) {
        router.get("/stories") { request, context in
            let user = try pageUser(.viewer, request, context)
            return try await storiesPage(user: user, source: nil, problems: [])
        }
        router.post("/stories") { request, context in
            let user = try pageUser(.admin, request, context)
            let form = try await formFields(request, context)
            try checkCSRF(form, request, context)
            let source = form["source"] ?? ""
            switch await save(source, replacing: nil) {
            case .success(let story):
                return Response.redirect(to: Self.storyPath(story))
            case .failure(let problems):
                return try await storiesPage(user: user, source: source, problems: problems.problems)
            }
        }
        router.get("/stories/:story") { request, context in
            let user = try pageUser(.viewer, request, context)
            let story = try existingStory(context, user: user)
            return try await storyPage(story, user: user, source: nil, problems: [])
        }
        router.post("/stories/:story") { request, context in
            let user = try pageUser(.admin, request, context)
            let story = try existingStory(context, user: user)
            let form = try await formFields(request, context)
            try checkCSRF(form, request, context)
            let source = form["source"] ?? ""
            switch await save(source, replacing: story.name) {
            case .success(let saved):
                return Response.redirect(to: Self.storyPath(saved))
            case .failure(let problems):
                return try await storyPage(story, user: user, source: source, problems: problems.problems)
            }
        }
        router.get("/stories/:story/diagram.svg") { request, context in
            let user = try pageUser(.viewer, request, context)
            let story = try existingStory(context, user: user)
            return Response(
                status: .ok,
                headers: [.contentType: "image/svg+xml"],
                body: .init(byteBuffer: ByteBuffer(string: try await diagram(story)))
            )
        }
        router.get("/stories/:story/download") { request, context in
            let user = try pageUser(.viewer, request, context)
            let story = try existingStory(context, user: user)
            let text = story.text ?? story.source.serialized(pretty: true)
            let json = text.drop { $0.isWhitespace }.first == "{"
            return Response(
                status: .ok,
                headers: [
                    .contentType: json ? "application/json" : "application/yaml",
                    .contentDisposition:
                        "attachment; filename=\"\(Story.snakeCase(story.name)).\(json ? "json" : "yaml")\"",
                ],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
        router.get("/stories/:story/export") { request, context in
            let user = try pageUser(.viewer, request, context)
            let story = try existingStory(context, user: user)
            let name = request.uri.queryParameters.get("format") ?? ""
            guard let format = StoryImport.Format(rawValue: name) else {
                throw HTTPError(.badRequest, message: "Unknown export format '\(name)': tines or huginn.")
            }
            return try exportResponse(story, format: format)
        }
        router.post("/stories/import") { request, context in
            let user = try pageUser(.admin, request, context)
            let form = try await formFields(request, context)
            try checkCSRF(form, request, context)
            switch await importStories(form["export"] ?? "", user: user, context) {
            case .success(let stories):
                return Response.redirect(to: stories.first.map(Self.storyPath) ?? "/stories")
            case .failure(let refusal):
                // The story that does not load stays in the editor, as the YAML the import wrote.
                return try await storiesPage(user: user, source: refusal.yaml, problems: refusal.problems)
            }
        }
        router.post("/stories/:story/delete") { request, context in
            let user = try pageUser(.admin, request, context)
            let story = try existingStory(context, user: user)
            let form = try await formFields(request, context)
            try checkCSRF(form, request, context)
            try await engine.unregister(story: story.name)
            context.logger.notice("story deleted", metadata: ["story": "\(story.name)", "user": "\(user.username)"])
            return Response.redirect(to: "/stories")
        }
        for (action, dryRun) in [("run", false), ("dry-run", true)] {
            router.post("/stories/:story/\(action)") { request, context in
                let user = try pageUser(.analyst, request, context)
                let story = try existingStory(context, user: user)
                let form = try await formFields(request, context)
                try checkCSRF(form, request, context)
                // A story with a form takes its input there.
                if story.form != nil {
                    return Response.redirect(to: Self.formPath(story) + (dryRun ? "?dry_run=true" : ""))
                }
                let guid = try await startRun(
                    story,
                    payload: .object([:]),
                    dryRun: dryRun,
                    by: user,
                    from: "the story page",
                    context
                )
                return Response.redirect(to: "/runs/\(guid)")
            }
        }
    }

    func existingStory(_ context: WebRequestContext, user: WebUser?) throws -> Story {
        guard let id = context.parameters.get("story"), let story = story(id) else {
            throw notFound("There is no such story.", user: user)
        }
        return story
    }

    /// Starts a run of `story` at its entry agent, logged with who started it and from where.
    func startRun(
        _ story: Story,
        payload: JSON,
        dryRun: Bool = false,
        by user: WebUser?,
        from source: String,
        _ context: WebRequestContext
    ) async throws -> String {
        let guid = try await engine.startRun(
            story: story.name,
            entry: Self.entryAgent(of: story),
            payload: payload,
            dryRun: dryRun
        )
        var metadata: Logger.Metadata = ["story": "\(story.name)", "run": "\(guid)", "from": "\(source)"]
        if let user { metadata["user"] = "\(user.username)" }
        context.logger.info("run started", metadata: metadata)
        return guid
    }

    /// Where a form or a page's Run button starts a run: the story's first webhook (what a form replaces), else
    /// its first entry agent.
    static func entryAgent(of story: Story) -> String? {
        (story.entryAgents.first(where: \.isWebhook) ?? story.entryAgents.first)?.key
    }

    /// Parses, lints and registers a story's text; `replacing` is the name it must keep when edited.
    func save(_ source: String, replacing name: String?) async -> Result<Story, StoryProblems> {
        do {
            let story = try Story(text: source)
            if let name, story.name != name {
                return .failure(
                    StoryProblems([
                        StoryProblem(
                            "story",
                            option: "name",
                            "the story is called '\(name)': to rename it, add it as a new story and delete this one"
                        )
                    ])
                )
            }
            try await engine.register(story)
            return .success(story)
        } catch let problems as StoryProblems {
            return .failure(problems)
        } catch {
            return .failure(StoryProblems([StoryProblem("story", "\(error)")]))
        }
    }

    func storiesPage(user: WebUser, source: String?, problems: [StoryProblem]) async throws -> Response {
        var rows: [[String: Any]] = []
        for name in engine.storyNames {
            guard let story = engine.story(named: name) else { continue }
            var row: [String: Any] = [
                "name": story.name, "description": story.description, "href": Self.storyPath(story),
                "agents": story.agents.count,
            ]
            if story.form != nil { row["form"] = Self.formPath(story) }
            if let run = try await engine.runs(story: story.name, limit: 1).first {
                row["lastRun"] = [
                    "href": "/runs/\(run.guid)", "status": run.status.rawValue, "started": Self.time(run.started),
                ]
            }
            rows.append(row)
        }
        let failures: [[String: Any]] = (stories?.failures ?? []).map { failure in
            let problems: [[String: Any]] = failure.problems.map { problem in
                var row: [String: Any] = ["message": problem.message]
                if let line = problem.line { row["line"] = line }
                return row
            }
            return ["file": failure.file, "problems": problems]
        }
        var values: [String: Any] = [
            "stories": rows, "hasStories": !rows.isEmpty, "failures": failures, "hasFailures": !failures.isEmpty,
            "editorAction": "/stories", "editorButton": "Add story",
        ]
        values.merge(editor(source ?? Self.newStoryTemplate, problems: problems)) { _, new in new }
        return page(
            "stories",
            title: "Stories",
            values,
            user: user,
            status: problems.isEmpty ? .ok : .unprocessableContent
        )
    }

    func storyPage(_ story: Story, user: WebUser, source: String?, problems: [StoryProblem]) async throws -> Response {
        let runs = try await engine.runs(story: story.name, limit: 10)
        var values: [String: Any] = [
            "name": story.name, "description": story.description, "href": Self.storyPath(story),
            "agentCount": story.agents.count, "runs": runs.map(runRow), "hasRuns": !runs.isEmpty,
            "webhooks": story.agents.filter(\.isWebhook).map {
                ["key": Story.snakeCase(story.name), "agent": $0.name]
            },
            "hasWebhooks": story.agents.contains(where: \.isWebhook),
            "source": story.text ?? story.source.serialized(pretty: true),
            "editorAction": Self.storyPath(story), "editorButton": "Save",
        ]
        if story.form != nil { values["form"] = Self.formPath(story) }
        values.merge(editor(source ?? story.text ?? story.source.serialized(pretty: true), problems: problems)) {
            _,
            new in new
        }
        return page(
            "story",
            title: story.name,
            values,
            user: user,
            status: problems.isEmpty ? .ok : .unprocessableContent
        )
    }

    /// The editor's values: the text, its numbered lines with the problems on each, and the problems' list.
    func editor(_ source: String, problems: [StoryProblem]) -> [String: Any] {
        let map = StorySourceMap(text: source)
        var byLine: [Int: [String]] = [:]
        var listed: [[String: Any]] = []
        for problem in problems {
            let line = map.position(of: problem)?.line
            if let line { byLine[line, default: []].append(problem.description) }
            var row: [String: Any] = ["message": problem.description]
            if let line { row["line"] = line }
            listed.append(row)
        }
        let lineCount = source.split(separator: "\n", omittingEmptySubsequences: false).count
        let lines: [[String: Any]] = (1...max(1, lineCount)).map { number in
            var line: [String: Any] = ["number": number]
            if let messages = byLine[number] { line["problem"] = messages.joined(separator: "; ") }
            return line
        }
        return ["source": source, "lines": lines, "problems": listed, "hasProblems": !listed.isEmpty]
    }

    static var newStoryTemplate: String {
        """
        name: My hunt
        description: What it looks for.
        agents:
          - name: Start
            type: webhook
          - name: Say hello
            type: transform
            receives_from: Start
            options:
              mode: message_only
              payload: {greeting: "hello {{ .start.name }}"}

        """
    }

    /// The diagram, coloured by the last run's outcome of each agent.
    func diagram(_ story: Story) async throws -> String {
        var states: [String: TimelineEntry.Outcome] = [:]
        if let run = try await engine.runs(story: story.name, limit: 1).first {
            for step in try await engine.timeline(run.guid) { states[step.agent] = step.outcome }
        }
        return StoryDiagram(story: story, states: states).svg()
    }

    func runRow(_ run: RunRecord) -> [String: Any] {
        [
            "href": "/runs/\(run.guid)", "short": String(run.guid.prefix(8)), "guid": run.guid, "story": run.story,
            "status": run.status.rawValue, "started": Self.time(run.started), "dryRun": run.dryRun,
            "took": run.ended.map { Self.duration($0 - run.started) } ?? "",
        ]
    }
}

// MARK: Runs

extension WebSite {
    /// Events shown on one page of a run: a 10,000-event run is read a page at a time.
    static var eventsPerPage: Int { 200 }

    func addRunRoutes(to router: Router<WebRequestContext>) {
        router.get("/runs") { request, context in
            let user = try pageUser(.viewer, request, context)
            let filter = request.uri.queryParameters.get("story").flatMap { $0.isEmpty ? nil : $0 }
            let runs = try await engine.runs(story: filter.flatMap { story($0)?.name } ?? filter, limit: 100)
            let options = engine.storyNames.map { ["name": $0, "selected": $0 == filter] }
            return page(
                "runs",
                title: "Runs",
                ["runs": runs.map(runRow), "hasRuns": !runs.isEmpty, "storyOptions": options],
                user: user
            )
        }
        router.get("/runs/:run") { request, context in
            let user = try pageUser(.viewer, request, context)
            let run = try await existingRun(context, user: user)
            let pageNumber = max(1, request.uri.queryParameters.get("page").flatMap { Int($0) } ?? 1)
            return try await runPage(run, page: pageNumber, user: user)
        }
        router.get("/runs/:run/stream") { request, context in
            _ = try pageUser(.viewer, request, context)
            let run = try await existingRun(context, user: context.user)
            return runStream(run)
        }
    }

    func existingRun(_ context: WebRequestContext, user: WebUser?) async throws -> RunRecord {
        guard let guid = context.parameters.get("run"), let run = try await engine.run(guid.lowercased()) else {
            throw notFound("There is no such run.", user: user)
        }
        return run
    }

    func runPage(_ run: RunRecord, page number: Int, user: WebUser) async throws -> Response {
        let timeline = try await engine.timeline(run.guid)
        // One page of events is read, whatever the run's size.
        let total = try await engine.events(run: run.guid, offset: 0, limit: 0).total
        let pages = max(1, (total + Self.eventsPerPage - 1) / Self.eventsPerPage)
        let current = min(number, pages)
        let shown = try await engine.events(
            run: run.guid,
            offset: (current - 1) * Self.eventsPerPage,
            limit: Self.eventsPerPage
        ).events
        var values: [String: Any] = [
            "guid": run.guid, "story": run.story, "status": run.status.rawValue, "dryRun": run.dryRun,
            "started": Self.time(run.started), "eventCount": total,
            "timeline": timeline.map { step in
                [
                    "agent": step.agent, "attempt": step.attempt, "started": Self.time(step.started),
                    "took": Self.duration(step.ended - step.started), "outcome": step.outcome.rawValue,
                    "emitted": step.emitted, "message": step.message ?? "",
                ] as [String: Any]
            },
            "hasTimeline": !timeline.isEmpty,
            "events": shown.map { event in
                [
                    "agent": event.agent, "id": event.id, "created": Self.time(event.created),
                    "json": event.payload.serialized(pretty: true), "isError": event.isError,
                ] as [String: Any]
            },
            "pages": pages > 1 ? (1...pages).map { ["number": $0, "current": $0 == current] } : [],
            "hasPages": pages > 1,
        ]
        if let story = engine.story(named: run.story) {
            values["storyHref"] = Self.storyPath(story)
            if let exit = story.exitAgent, let payload = try await engine.lastEvent(run: run.guid, agent: exit),
                let report = Self.report(payload)
            {
                values["report"] = report
            }
        }
        if let ended = run.ended {
            values["ended"] = Self.time(ended)
            values["took"] = Self.duration(ended - run.started)
        }
        if let error = run.error { values["error"] = error }
        return page(
            "run",
            title: "Run \(run.guid.prefix(8))",
            values,
            user: user,
            live: run.status == .running ? "/runs/\(run.guid)/stream" : nil
        )
    }

    /// The report of a run: the last event of the story's exit agent, shown as a table when it lists `hosts` (the
    /// reference hunt's report), with the domain and window above it.
    static func report(_ payload: JSON) -> [String: Any]? {
        guard case .object(let report) = payload, case .array(let hosts)? = report["hosts"] else { return nil }
        let objects = hosts.compactMap(\.objectValue)
        var columns: [String] = []
        for object in objects {
            for key in object.keys where !columns.contains(key) { columns.append(key) }
        }
        let rows: [[String: Any]] = objects.map { object in
            ["cells": columns.map { cell(object[$0]) }]
        }
        var summary: [String] = []
        if let domain = report["domain"]?.stringValue { summary.append("Domain \(domain)") }
        if let from = report["window"]?["from"]?.stringValue, let to = report["window"]?["to"]?.stringValue {
            summary.append("from \(from) to \(to)")
        }
        summary.append("\(objects.count) host\(objects.count == 1 ? "" : "s")")
        return [
            "columns": columns.map { $0.replacingOccurrences(of: "_", with: " ") }, "rows": rows,
            "hasRows": !rows.isEmpty, "summary": summary.joined(separator: ", "),
        ]
    }

    static func cell(_ value: JSON?) -> String {
        switch value {
        case nil, .null?: ""
        case .bool(let flag)?: flag ? "yes" : "no"
        case .string(let text)?: text
        case .array(let items)?: items.map { $0.stringValue ?? $0.serialized() }.joined(separator: ", ")
        case let other?: other.serialized()
        }
    }

    /// Server-sent events while a run runs: `update` whenever its status or timeline changes, `end` when it has
    /// ended (the page then renders once more and closes the stream). Polls the store twice a second, for at most
    /// an hour.
    func runStream(_ run: RunRecord) -> Response {
        let engine = engine
        let guid = run.guid
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                var last = ""
                let deadline = ContinuousClock.now + .seconds(3600)
                while ContinuousClock.now < deadline {
                    guard let record = try await engine.run(guid) else { break }
                    let steps = try await engine.timeline(guid).count
                    let state = "\(record.status.rawValue) \(steps)"
                    if record.status != .running {
                        try await writer.write(ByteBuffer(string: "event: end\ndata: \(record.status.rawValue)\n\n"))
                        break
                    }
                    if state != last {
                        try await writer.write(ByteBuffer(string: "event: update\ndata: \(state)\n\n"))
                        last = state
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
                try await writer.finish(nil)
            }
        )
    }
}
