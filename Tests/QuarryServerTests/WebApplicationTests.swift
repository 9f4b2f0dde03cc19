import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarryServer
import QuarryStories
import QuarryTesting
import Testing

/// The web application over real HTTP on loopback: a story engine on a fresh data directory, the users of a
/// security index beside it, and an HTTP client that does not follow redirects.
struct WebHarness {
    let engine: StoryEngine<ContinuousClock>
    let security: ElasticsearchSecurity
    let directory: URL
    let base: String
    let client: HTTPClient

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var json: JSON? { try? JSON.parse(body) }
    }

    static let passwords = ["ada": "admin-password", "ana": "analyst-password", "vic": "viewer-password"]

    func send(
        _ method: HTTPMethod,
        _ path: String,
        cookie: String? = nil,
        token: String? = nil,
        form: [(String, String)]? = nil,
        body: String? = nil,
        contentType: String? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let form {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let text = form.map {
                ($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "") + "="
                    + ($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
            }.joined(separator: "&")
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: text))
        } else if let body {
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Signs in through the form, as a browser does; returns the `Cookie` header of the session.
    func signIn(_ username: String) async throws -> String {
        let page = try await send(.GET, "/login")
        let formCookie = try #require(Self.cookie(page.headers, "quarry_form"))
        let csrf = try #require(Self.csrf(page.body))
        let reply = try await send(
            .POST,
            "/login",
            cookie: "quarry_form=\(formCookie)",
            form: [
                ("_csrf", csrf), ("username", username), ("password", Self.passwords[username] ?? ""),
                ("next", "/runs"),
            ]
        )
        #expect(reply.status == 303)
        #expect(reply.headers.first(name: "Location") == "/runs")
        let session = try #require(Self.cookie(reply.headers, "quarry_session"))
        return "quarry_session=\(session)"
    }

    /// The CSRF token of a page's first form.
    static func csrf(_ html: String) -> String? {
        html.firstMatch(of: /name="_csrf" value="([^"]*)"/).map { String($0.1) }
    }

    static func cookie(_ headers: HTTPHeaders, _ name: String) -> String? {
        for value in headers["Set-Cookie"] where value.hasPrefix(name + "=") {
            return String(value.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }
}

func withWebApplication<T>(
    configuration: WebServerConfiguration = .init(port: 0),
    _ body: (WebHarness) async throws -> T
) async throws -> T {
    try await withEngine { engine, directory in
        let security = try ElasticsearchSecurity(
            directory: directory,
            configuration: .init(passwordHashCost: 4),
            logger: Logger(label: "quarry.test.security")
        )
        for (user, role) in [("ada", "admin"), ("ana", "analyst"), ("vic", "viewer")] {
            try security.putUser(
                user,
                body: ["password": .string(WebHarness.passwords[user]!), "roles": [.string(role)]]
            )
        }
        let ports = AsyncStream<Int>.makeStream()
        var configuration = configuration
        configuration.port = 0
        let application = try buildWebApplication(
            engine: engine,
            security: security,
            store: nil,
            configuration: configuration,
            logger: webTestLogger
        ) { port in ports.continuation.yield(port) }
        let server = Task { try await application.runService() }
        defer { server.cancel() }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        let harness = WebHarness(
            engine: engine,
            security: security,
            directory: directory,
            base: "http://127.0.0.1:\(port)",
            client: client
        )
        do {
            let result = try await body(harness)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

/// Quiet: cancelling the server at a test's end makes Hummingbird log errors that mean nothing here.
let webTestLogger: Logger = {
    var logger = Logger(label: "quarry.test.web")
    logger.logLevel = .critical
    return logger
}()

/// A story built to be hostile: markup in its name, form title and events, a credential in its output, and a
/// public form.
let hostileStory = """
    name: "<script>alert('story')</script> hunt"
    description: "<b>bold</b> & more"
    exit_agent: Echo
    credentials: [api_password]
    form:
      title: "<img src=x onerror=alert(1)>"
      visibility: public
      fields:
        - {name: note, label: Note, required: true}
        - {name: count, label: Count, type: number}
        - {name: to, label: Email, type: email}
    agents:
      - name: Start
        type: webhook
        options: {secret: "web-test-secret-0123456789"}
      - name: Echo
        type: transform
        receives_from: Start
        options:
          mode: message_only
          payload:
            note: "{{ .start.note }}"
            link: "{% story_run_link %}"
            password: "{% credential api_password %}"

    """

let hostileKey = Story.snakeCase("<script>alert('story')</script> hunt")
let credentialValue = "sup3r-s3cret-credential-value"

@Suite(.serialized, .mayBlock) struct WebApplicationTests {
    @Test func pagesRedirectToSignInAndTheAPIAnswers401WithoutCredentials() async throws {
        try await withWebApplication { web in
            try await web.engine.register(try Story(text: hostileStory))
            for path in [
                "/stories", "/stories/\(hostileKey)", "/stories/\(hostileKey)/diagram.svg", "/runs", "/credentials",
                "/resources", "/forms/\(hostileKey)", "/runs/00000000-0000-0000-0000-000000000000",
            ] {
                let reply = try await web.send(.GET, path)
                #expect(reply.status == 303, "\(path)")
                #expect(reply.headers.first(name: "Location")?.hasPrefix("/login?next=") == true, "\(path)")
            }
            for (method, path) in [
                (HTTPMethod.GET, "/api/v1/stories"), (.POST, "/api/v1/stories"), (.GET, "/api/v1/runs"),
                (.POST, "/api/v1/stories/\(hostileKey)/runs"), (.GET, "/api/v1/credentials"),
                (.PUT, "/api/v1/credentials/x"), (.DELETE, "/api/v1/resources/x"),
            ] {
                let reply = try await web.send(method, path, token: "qrt_not-a-token")
                #expect(reply.status == 401, "\(method) \(path)")
                #expect(reply.json?["error"]?["code"]?.stringValue == "unauthorized", "\(reply.body)")
                #expect(reply.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)
            }
            #expect(try await web.send(.GET, "/metrics").status == 401)
            let health = try await web.send(.GET, "/healthz")
            #expect(health.status == 200 && health.json?["status"]?.stringValue == "ok")
            // A forged session cookie is no session.
            #expect(try await web.send(.GET, "/stories", cookie: "quarry_session=forged").status == 303)
        }
    }

    @Test func signInSetsAStrictSessionCookieAndSigningOutEndsItOnTheServer() async throws {
        try await withWebApplication { web in
            let page = try await web.send(.GET, "/login")
            #expect(page.status == 200)
            #expect(page.headers.first(name: "Content-Security-Policy")?.contains("default-src 'self'") == true)
            #expect(page.headers.first(name: "X-Frame-Options") == "DENY")
            let formCookie = try #require(WebHarness.cookie(page.headers, "quarry_form"))
            let csrf = try #require(WebHarness.csrf(page.body))
            // Without the CSRF token, or with another browser's, the sign-in is refused.
            let missing = try await web.send(
                .POST,
                "/login",
                cookie: "quarry_form=\(formCookie)",
                form: [("username", "ana"), ("password", "analyst-password")]
            )
            #expect(missing.status == 403)
            let wrong = try await web.send(
                .POST,
                "/login",
                cookie: "quarry_form=\(formCookie)",
                form: [("_csrf", csrf), ("username", "ana"), ("password", "nope-nope")]
            )
            #expect(wrong.status == 401)
            #expect(wrong.body.contains("Wrong user name or password."))
            #expect(WebHarness.cookie(wrong.headers, "quarry_session") == nil)
            let reply = try await web.send(
                .POST,
                "/login",
                cookie: "quarry_form=\(formCookie)",
                form: [
                    ("_csrf", csrf), ("username", "ana"), ("password", "analyst-password"), ("next", "//evil.example"),
                ]
            )
            #expect(reply.status == 303)
            // An open redirect is not followed: only local paths.
            #expect(reply.headers.first(name: "Location") == "/stories")
            let setCookie = try #require(reply.headers["Set-Cookie"].first { $0.hasPrefix("quarry_session=") })
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax"))
            #expect(!setCookie.contains("Secure"))
            let cookie = "quarry_session=" + (WebHarness.cookie(reply.headers, "quarry_session") ?? "")
            let stories = try await web.send(.GET, "/stories", cookie: cookie)
            #expect(stories.status == 200)
            #expect(stories.body.contains("Sign out ana"))
            // Signing out needs the session's CSRF token, and ends the session for every copy of the cookie.
            #expect(try await web.send(.POST, "/logout", cookie: cookie, form: [("_csrf", "forged")]).status == 403)
            let token = try #require(WebHarness.csrf(stories.body))
            #expect(try await web.send(.POST, "/logout", cookie: cookie, form: [("_csrf", token)]).status == 303)
            #expect(try await web.send(.GET, "/stories", cookie: cookie).status == 303)
        }
    }

    @Test func rolesLimitWhatEachUserMayDo() async throws {
        try await withWebApplication { web in
            try await web.engine.register(try Story(text: hostileStory))
            let viewer = try await web.signIn("vic")
            let analyst = try await web.signIn("ana")
            let admin = try await web.signIn("ada")
            let viewerPage = try await web.send(.GET, "/stories/\(hostileKey)", cookie: viewer)
            #expect(viewerPage.status == 200)
            #expect(!viewerPage.body.contains("Dry run"))
            let viewerToken = try #require(WebHarness.csrf(viewerPage.body))
            // A viewer cannot start a run, by page, form or API.
            #expect(
                try await web.send(.POST, "/stories/\(hostileKey)/run", cookie: viewer, form: [("_csrf", viewerToken)])
                    .status == 403
            )
            #expect(try await web.send(.GET, "/forms/\(hostileKey)", cookie: viewer).status == 403)
            let viewerAPIToken = try web.security.issueUserToken(for: "vic")
            let refused = try await web.send(
                .POST,
                "/api/v1/stories/\(hostileKey)/runs",
                token: viewerAPIToken,
                body: #"{"note": "x"}"#
            )
            #expect(refused.status == 403)
            #expect(refused.json?["error"]?["code"]?.stringValue == "forbidden")
            #expect(try await web.send(.GET, "/credentials", cookie: viewer).status == 403)
            #expect(try await web.send(.GET, "/resources", cookie: viewer).status == 200)
            // An analyst runs hunts but does not edit stories or credentials.
            let analystPage = try await web.send(.GET, "/stories/\(hostileKey)", cookie: analyst)
            #expect(analystPage.body.contains("Dry run"))
            let analystToken = try #require(WebHarness.csrf(analystPage.body))
            #expect(
                try await web.send(
                    .POST,
                    "/stories/\(hostileKey)/delete",
                    cookie: analyst,
                    form: [("_csrf", analystToken)]
                ).status == 403
            )
            #expect(
                try await web.send(
                    .POST,
                    "/credentials",
                    cookie: analyst,
                    form: [("_csrf", analystToken), ("name", "x"), ("value", "y")]
                ).status == 403
            )
            // Without the CSRF token even an admin's post is refused.
            #expect(
                try await web.send(.POST, "/credentials", cookie: admin, form: [("name", "x"), ("value", "y")]).status
                    == 403
            )
            #expect(try web.engine.vault.credentialNames().isEmpty)
        }
    }

    @Test func markupInStoriesFormsAndEventsIsRenderedInertAndCredentialsNeverShow() async throws {
        try await withWebApplication { web in
            let admin = try await web.signIn("ada")
            let token = try web.security.issueUserToken(for: "ada")
            // The story arrives through the API, the credential through the page.
            let created = try await web.send(
                .POST,
                "/api/v1/stories",
                token: token,
                body: hostileStory,
                contentType: "application/yaml"
            )
            #expect(created.status == 201, "\(created.body)")
            let credentials = try await web.send(.GET, "/credentials", cookie: admin)
            let csrf = try #require(WebHarness.csrf(credentials.body))
            let saved = try await web.send(
                .POST,
                "/credentials",
                cookie: admin,
                form: [("_csrf", csrf), ("name", "api_password"), ("value", credentialValue)]
            )
            #expect(saved.status == 303)
            let formPage = try await web.send(.GET, "/forms/\(hostileKey)", cookie: admin)
            let formToken = try #require(WebHarness.csrf(formPage.body))
            let payload = "<script>alert('form')</script>"
            let started = try await web.send(
                .POST,
                "/forms/\(hostileKey)",
                cookie: admin,
                form: [("_csrf", formToken), ("note", payload)]
            )
            #expect(started.status == 303)
            let location = try #require(started.headers.first(name: "Location"))
            let guid = String(location.dropFirst("/runs/".count))
            let record = try await web.engine.waitForRun(guid)
            #expect(record.status == .succeeded)
            // The event carries the run page's real URL, and the credential redacted.
            let echo = try #require(try await web.engine.events(run: guid, agent: "Echo").first)
            #expect(echo.payload["link"]?.stringValue == web.base + "/runs/\(guid)")
            #expect(echo.payload["password"]?.stringValue == "[redacted]")
            #expect(try await web.send(.GET, "/runs/\(guid)", cookie: admin).status == 200)

            var bodies: [(String, String)] = []
            for path in [
                "/stories", "/stories/\(hostileKey)", "/stories/\(hostileKey)/diagram.svg", "/runs", location,
                "/forms/\(hostileKey)", "/credentials", "/resources", "/stories/\(hostileKey)/download",
            ] {
                let reply = try await web.send(.GET, path, cookie: admin)
                #expect(reply.status == 200, "\(path)")
                bodies.append((path, reply.body))
            }
            for path in [
                "/api/v1/stories", "/api/v1/stories/\(hostileKey)", "/api/v1/runs", "/api/v1/runs/\(guid)",
                "/api/v1/runs/\(guid)/events", "/api/v1/credentials", "/api/v1/resources",
            ] {
                let reply = try await web.send(.GET, path, token: token)
                #expect(reply.status == 200, "\(path): \(reply.body)")
                bodies.append((path, reply.body))
            }
            for (path, body) in bodies {
                #expect(!body.contains(credentialValue), "\(path) shows the credential")
                if path.hasPrefix("/api/") || path.hasSuffix("/download") { continue }
                #expect(!body.contains("<script>alert"), "\(path) renders markup")
                #expect(!body.contains("<img src=x"), "\(path) renders markup")
            }
            let runPage = try #require(bodies.first { $0.0 == location }?.1)
            #expect(runPage.contains("&lt;script&gt;alert(&#39;form&#39;)&lt;/script&gt;"))
            let listing = try #require(bodies.first { $0.0 == "/stories" }?.1)
            #expect(listing.contains("&lt;script&gt;alert(&#39;story&#39;)&lt;/script&gt; hunt"))
        }
    }

    @Test func formsValidateOnTheServerAndPublicFormsNeedTheirSecretLink() async throws {
        try await withWebApplication { web in
            try await web.engine.register(try Story(text: hostileStory))
            try web.engine.vault.setCredential("api_password", value: credentialValue)
            let analyst = try await web.signIn("ana")
            let page = try await web.send(.GET, "/forms/\(hostileKey)", cookie: analyst)
            let csrf = try #require(WebHarness.csrf(page.body))
            let invalid = try await web.send(
                .POST,
                "/forms/\(hostileKey)",
                cookie: analyst,
                form: [("_csrf", csrf), ("note", "  "), ("count", "many"), ("to", "not-an-address")]
            )
            #expect(invalid.status == 422)
            #expect(invalid.body.contains("Note is required."))
            #expect(invalid.body.contains("Count must be a number."))
            #expect(invalid.body.contains("Email must be an email address"))
            // What was typed stays in the fields.
            #expect(invalid.body.contains("value=\"many\""))
            #expect(try await web.engine.runs().isEmpty)

            // The public link works without signing in; a wrong secret is the same 404 as a missing story.
            let secret = "web-test-secret-0123456789"
            let publicPage = try await web.send(.GET, "/forms/\(hostileKey)/\(secret)")
            #expect(publicPage.status == 200)
            #expect(try await web.send(.GET, "/forms/\(hostileKey)/wrong-secret").status == 404)
            #expect(try await web.send(.GET, "/forms/no_such_story/\(secret)").status == 404)
            let formCookie = try #require(WebHarness.cookie(publicPage.headers, "quarry_form"))
            let publicToken = try #require(WebHarness.csrf(publicPage.body))
            let submitted = try await web.send(
                .POST,
                "/forms/\(hostileKey)/\(secret)",
                cookie: "quarry_form=\(formCookie)",
                form: [("_csrf", publicToken), ("note", "from outside"), ("count", "3")]
            )
            #expect(submitted.status == 303)
            let location = try #require(submitted.headers.first(name: "Location"))
            #expect(location.contains("?submitted="))
            let guid = String(location.split(separator: "=").last ?? "")
            let run = try await web.engine.waitForRun(guid)
            #expect(run.status == .succeeded)
            let entry = try #require(try await web.engine.events(run: guid, agent: "Start").first)
            #expect(entry.payload["note"]?.stringValue == "from outside")
            #expect(entry.payload["count"]?.intValue == 3)
            // Someone without the form cookie's token cannot post it (a cross-site form).
            #expect(
                try await web.send(.POST, "/forms/\(hostileKey)/\(secret)", form: [("note", "forged")]).status == 403
            )
            // A private form has no public link.
            try await web.engine.register(
                try Story(
                    text: hostileStory.replacingOccurrences(of: "visibility: public", with: "visibility: private")
                )
            )
            #expect(try await web.send(.GET, "/forms/\(hostileKey)/\(secret)").status == 404)
        }
    }

    @Test func webhooksAnswerWithTheRightStatusesAndEveryAcceptedPostIsOneRun() async throws {
        let configuration = WebServerConfiguration(port: 0, maximumWebhookBodySize: 4096)
        try await withWebApplication(configuration: configuration) { web in
            try await web.engine.register(try Story(text: hostileStory))
            let path = "/webhook/\(hostileKey)/web-test-secret-0123456789"
            #expect(try await web.send(.POST, "/webhook/\(hostileKey)/wrong", body: "{}").status == 404)
            #expect(try await web.send(.POST, "/webhook/nothing/web-test-secret-0123456789", body: "{}").status == 404)
            let get = try await web.send(.GET, path)
            #expect(get.status == 405)
            #expect(get.headers.first(name: "Allow") == "POST")
            let large = String(repeating: "x", count: 5000)
            #expect(
                try await web.send(.POST, path, body: #"{"note": "\#(large)"}"#, contentType: "application/json").status
                    == 413
            )
            let malformed = try await web.send(.POST, path, body: #"{"note": "#, contentType: "application/json")
            #expect(malformed.status == 400)
            // The malformed post is recorded as a failed run, visible with its error.
            #expect(try await web.engine.runs().count == 1)

            let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let reply = try await web.send(
                            .POST,
                            path,
                            body: #"{"note": "post \#(index)"}"#,
                            contentType: "application/json"
                        )
                        return (reply.status, reply.json?["run"]?.stringValue)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0.0 == 201 })
            let guids = Set(statuses.compactMap(\.1))
            #expect(guids.count == 200)
            let runs = try await web.engine.runs(limit: 1000)
            #expect(runs.count == 201)
            #expect(Set(runs.map(\.guid)).isSuperset(of: guids))
        }
    }

    @Test func theAPIManagesStoriesRunsCredentialsAndResources() async throws {
        try await withWebApplication { web in
            let admin = try web.security.issueUserToken(for: "ada")
            let analyst = try web.security.issueUserToken(for: "ana")
            // Issuing a new token replaces the old one.
            let replaced = try web.security.issueUserToken(for: "vic")
            let viewer = try web.security.issueUserToken(for: "vic")
            #expect(try await web.send(.GET, "/api/v1/stories", token: replaced).status == 401)
            #expect(try await web.send(.GET, "/api/v1/stories", token: viewer).status == 200)

            let broken = """
                name: Broken
                agents:
                  - name: Start
                    type: webhook
                  - name: Next
                    type: trnsform
                    receives_from: Start

                """
            let lint = try await web.send(.POST, "/api/v1/stories/lint", token: viewer, body: broken)
            #expect(lint.status == 200)
            #expect(lint.json?["valid"]?.boolValue == false)
            let problem = try #require(lint.json?["problems"]?[0])
            #expect(problem["line"]?.intValue == 6, "\(lint.body)")
            let refused = try await web.send(.POST, "/api/v1/stories", token: admin, body: broken)
            #expect(refused.status == 422)
            #expect(refused.json?["error"]?["code"]?.stringValue == "invalid_story")
            #expect(refused.json?["error"]?["problems"]?[0]?["line"]?.intValue == 6)

            #expect(try await web.send(.POST, "/api/v1/stories", token: admin, body: hostileStory).status == 201)
            #expect(try await web.send(.POST, "/api/v1/stories", token: admin, body: hostileStory).status == 409)
            let story = try await web.send(.GET, "/api/v1/stories/\(hostileKey)", token: viewer)
            #expect(story.json?["source"]?.stringValue == hostileStory)
            #expect(story.json?["form"]?["visibility"]?.stringValue == "public")
            let renamed = hostileStory.replacingOccurrences(of: "</script> hunt", with: "</script> other")
            #expect(
                try await web.send(.PUT, "/api/v1/stories/\(hostileKey)", token: admin, body: renamed).status == 422
            )

            #expect(
                try await web.send(.PUT, "/api/v1/credentials/api_password", token: analyst, body: #"{"value": "x"}"#)
                    .status == 403
            )
            #expect(
                try await web.send(
                    .PUT,
                    "/api/v1/credentials/api_password",
                    token: admin,
                    body: #"{"value": "\#(credentialValue)"}"#
                ).status == 200
            )
            #expect(
                try await web.send(.PUT, "/api/v1/resources/smtp", token: admin, body: #"{"value": {"host": "mx"}}"#)
                    .status == 200
            )
            let resources = try await web.send(.GET, "/api/v1/resources", token: viewer)
            #expect(resources.json?["resources"]?["smtp"]?["host"]?.stringValue == "mx")
            let names = try await web.send(.GET, "/api/v1/credentials", token: admin)
            #expect(names.json?["credentials"] == ["api_password"])

            let badPayload = try await web.send(
                .POST,
                "/api/v1/stories/\(hostileKey)/runs",
                token: analyst,
                body: "[1]"
            )
            #expect(badPayload.status == 400)
            let started = try await web.send(
                .POST,
                "/api/v1/stories/\(hostileKey)/runs",
                token: analyst,
                body: #"{"note": "api"}"#
            )
            #expect(started.status == 201)
            let guid = try #require(started.json?["run"]?.stringValue)
            #expect(started.json?["url"]?.stringValue == web.base + "/runs/\(guid)")
            _ = try await web.engine.waitForRun(guid)
            let run = try await web.send(.GET, "/api/v1/runs/\(guid)", token: viewer)
            #expect(run.json?["status"]?.stringValue == "succeeded")
            #expect(run.json?["timeline"]?.arrayValue?.count == 2)
            let events = try await web.send(.GET, "/api/v1/runs/\(guid)/events?agent=Echo", token: viewer)
            #expect(events.json?["events"]?[0]?["payload"]?["note"]?.stringValue == "api")
            #expect(try await web.send(.GET, "/api/v1/runs/nope", token: viewer).status == 404)

            #expect(try await web.send(.DELETE, "/api/v1/credentials/api_password", token: admin).status == 200)
            #expect(try await web.send(.DELETE, "/api/v1/credentials/api_password", token: admin).status == 404)
            #expect(try await web.send(.DELETE, "/api/v1/stories/\(hostileKey)", token: admin).status == 200)
            #expect(try await web.send(.GET, "/api/v1/stories/\(hostileKey)", token: viewer).status == 404)
            // Its runs stay.
            #expect(try await web.send(.GET, "/api/v1/runs/\(guid)", token: viewer).status == 200)

            let metrics = try await web.send(.GET, "/metrics", token: viewer)
            #expect(metrics.status == 200)
            #expect(
                metrics.body.contains(
                    #"quarry_http_requests_total{route="/api/v1/stories/:id",method="GET",status="200"}"#
                )
            )
            #expect(metrics.body.contains("quarry_runs_finished_total"))
            #expect(metrics.body.contains("quarry_agent_duration_seconds_bucket"))
            #expect(metrics.body.contains("quarry_queue_depth"))
        }
    }

    @Test func anAdminAddsAndEditsStoriesWithProblemsShownAtTheirLines() async throws {
        try await withWebApplication { web in
            let admin = try await web.signIn("ada")
            let page = try await web.send(.GET, "/stories", cookie: admin)
            let csrf = try #require(WebHarness.csrf(page.body))
            let broken = """
                name: Typo
                agents:
                  - name: Start
                    type: webhook
                  - name: Next
                    type: trnsform
                    receives_from: Start

                """
            let refused = try await web.send(
                .POST,
                "/stories",
                cookie: admin,
                form: [("_csrf", csrf), ("source", broken)]
            )
            #expect(refused.status == 422)
            // The problem is listed with its line, the gutter marks that line, and the text is kept as typed.
            #expect(refused.body.contains(#"data-line="6">line 6</a>"#), "\(refused.body)")
            #expect(refused.body.contains(#"<span class="bad""#))
            #expect(refused.body.contains("type: trnsform"))
            let fixed = broken.replacingOccurrences(of: "trnsform", with: "transform")
            let saved = try await web.send(
                .POST,
                "/stories",
                cookie: admin,
                form: [("_csrf", csrf), ("source", fixed)]
            )
            #expect(saved.status == 303)
            #expect(saved.headers.first(name: "Location") == "/stories/typo")
            #expect(web.engine.story(named: "Typo")?.text == fixed)
            // Editing keeps the name; a new name is refused rather than silently forking the story.
            let renamed = fixed.replacingOccurrences(of: "name: Typo", with: "name: Other")
            let edit = try await web.send(
                .POST,
                "/stories/typo",
                cookie: admin,
                form: [("_csrf", csrf), ("source", renamed)]
            )
            #expect(edit.status == 422)
            let diagram = try await web.send(.GET, "/stories/typo/diagram.svg", cookie: admin)
            #expect(diagram.headers.first(name: "Content-Type") == "image/svg+xml")
            #expect(diagram.body.contains(#"data-agent="next""#))
            #expect(
                try await web.send(.POST, "/stories/typo/delete", cookie: admin, form: [("_csrf", csrf)]).status == 303
            )
            #expect(web.engine.story(named: "Typo") == nil)
        }
    }

    @Test func storiesComeInAsUploadsAndGoOutAsTinesAndHuginnExports() async throws {
        try await withWebApplication { web in
            let admin = try await web.signIn("ada")
            let page = try await web.send(.GET, "/stories", cookie: admin)
            #expect(page.body.contains(#"action="/stories/import" enctype="multipart/form-data""#))
            let csrf = try #require(WebHarness.csrf(page.body))
            func upload(_ export: String, as user: String? = nil) async throws -> WebHarness.Reply {
                let boundary = "quarry-upload-boundary"
                let body = """
                    --\(boundary)\r
                    Content-Disposition: form-data; name="_csrf"\r
                    \r
                    \(csrf)\r
                    --\(boundary)\r
                    Content-Disposition: form-data; name="export"; filename="story.json"\r
                    Content-Type: application/json\r
                    \r
                    \(export)\r
                    --\(boundary)--\r

                    """
                return try await web.send(
                    .POST,
                    "/stories/import",
                    cookie: user ?? admin,
                    body: body,
                    contentType: "multipart/form-data; boundary=\(boundary)"
                )
            }
            let tines: JSON = [
                "schema_version": 3, "name": "Uploaded loop",
                "agents": [
                    [
                        "type": "Agents::WebhookAgent", "name": "Fetch", "guid": "a",
                        "options": ["secret": "uploaded-secret-0123"],
                    ],
                    [
                        "type": "Agents::TriggerAgent", "name": "More", "guid": "b",
                        "options": ["rules": [["type": "regex", "path": "{{ .fetch.more }}", "value": "true"]]],
                    ],
                    [
                        "type": "Agents::EventTransformationAgent", "name": "Fetch", "guid": "c",
                        "options": ["mode": "message_only", "payload": ["more": "false"]],
                    ],
                ],
                "links": [["source": 0, "receiver": 1], ["source": 1, "receiver": 2], ["source": 2, "receiver": 1]],
                "diagram_layout": #"{"a": [100, 0], "b": [100, 120], "c": [300, 60]}"#,
            ]
            let imported = try await upload(tines.serialized())
            #expect(imported.status == 303, "\(imported.body)")
            #expect(imported.headers.first(name: "Location") == "/stories/uploaded_loop")
            let story = try #require(web.engine.story(named: "Uploaded loop"))
            #expect(story.agents.map(\.name) == ["Fetch 1", "More", "Fetch 2"])
            #expect(story.aliases.map(\.key) == ["fetch"])
            // The diagram keeps the author's rows (y) and order (x), the loop included.
            let diagram = try await web.send(.GET, "/stories/uploaded_loop/diagram.svg", cookie: admin)
            #expect(diagram.status == 200)
            let rows = diagram.body.matches(of: /data-agent="([a-z0-9_]+)">\n<rect x="([0-9.]+)" y="([0-9.]+)"/).map {
                (String($0.output.1), Double($0.output.3)!)
            }
            #expect(rows.map(\.0) == ["fetch_1", "more", "fetch_2"])
            #expect(rows[0].1 < rows[2].1 && rows[2].1 < rows[1].1, "\(rows)")

            // Both downloads import back to the same story.
            let storyPage = try await web.send(.GET, "/stories/uploaded_loop", cookie: admin)
            #expect(storyPage.body.contains(#"href="/stories/uploaded_loop/export?format=tines""#))
            #expect(storyPage.body.contains(#"href="/stories/uploaded_loop/export?format=huginn""#))
            for format in ["tines", "huginn"] {
                let export = try await web.send(.GET, "/stories/uploaded_loop/export?format=\(format)", cookie: admin)
                #expect(export.status == 200)
                #expect(
                    export.headers.first(name: "Content-Disposition")
                        == "attachment; filename=\"uploaded_loop.\(format).json\""
                )
                let again = try #require(try StoryImport.stories(fromExport: export.body, agents: .builtIn).first)
                #expect(try StoryYAML.text(again.story) == (try StoryYAML.text(story.source)), "\(format)")
            }
            #expect(
                try await web.send(.GET, "/stories/uploaded_loop/export?format=zapier", cookie: admin).status == 400
            )

            // A newer Tines export is refused with the reason, on the page; nothing is added.
            let newer = try await upload(#"{"schema_version": 24, "name": "New", "agents": [], "links": []}"#)
            #expect(newer.status == 422)
            #expect(newer.body.contains("schema_version 24"))
            // One that imports but does not lint stays in the editor with its problems.
            let odd = try await upload(
                #"{"schema_version": 3, "name": "Odd", "agents": [{"type": "Agents::WebhookAgent", "name": "W", "guid": "1", "options": {"colour": "red"}}], "links": []}"#
            )
            #expect(odd.status == 422)
            #expect(odd.body.contains("unknown option for webhook"))
            #expect(odd.body.contains("colour: red"))
            #expect(web.engine.story(named: "Odd") == nil)
            // Importing is an admin's; a viewer may download.
            let viewer = try await web.signIn("vic")
            #expect(try await upload(tines.serialized(), as: viewer).status == 403)
            #expect(
                try await web.send(.GET, "/stories/uploaded_loop/export?format=tines", cookie: viewer).status == 200
            )

            // The REST API does the same: an export's stories all come in, or none.
            let token = try web.security.issueUserToken(for: "ada")
            let huginn = try await web.send(.GET, "/api/v1/stories/uploaded_loop/export?format=huginn", token: token)
            #expect(huginn.status == 200)
            #expect(huginn.json?["schema_version"] == 1)
            #expect(
                try await web.send(.GET, "/api/v1/stories/uploaded_loop/export?format=x", token: token).status == 400
            )
            let renamed = huginn.body.replacingOccurrences(of: "Uploaded loop", with: "Uploaded again")
            let created = try await web.send(.POST, "/api/v1/stories/import", token: token, body: renamed)
            #expect(created.status == 201, "\(created.body)")
            #expect(created.json?["stories"]?[0]?["name"] == "Uploaded again")
            let refused = try await web.send(
                .POST,
                "/api/v1/stories/import",
                token: token,
                body: #"{"schema_version": 24, "name": "New", "agents": [], "links": []}"#
            )
            #expect(refused.status == 422)
            #expect(
                refused.json?["error"]?["problems"]?[0]?["message"]?.stringValue?.contains("schema_version 24") == true
            )
            let viewerToken = try web.security.issueUserToken(for: "vic")
            #expect(
                try await web.send(.POST, "/api/v1/stories/import", token: viewerToken, body: renamed).status == 403
            )
        }
    }

    @Test func aWatchedDirectoryLoadsNewAndChangedFilesAndShowsTheOnesThatDoNotLint() async throws {
        try await withEngine { engine, directory in
            let folder = directory.appendingPathComponent("watched")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let stories = StoryDirectory(path: folder.path, engine: engine, logger: webTestLogger)
            let good = "name: Watched\nagents:\n  - {name: Start, type: webhook}\n"
            try good.write(to: folder.appendingPathComponent("watched.yaml"), atomically: true, encoding: .utf8)
            try "name: Bad\nagents:\n  - {name: Start, type: webhok}\n".write(
                to: folder.appendingPathComponent("bad.yml"),
                atomically: true,
                encoding: .utf8
            )
            try "not a story".write(to: folder.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
            try await stories.scan()
            #expect(engine.story(named: "Watched") != nil)
            #expect(stories.failures.map(\.file) == ["bad.yml"])
            #expect(stories.failures.first?.problems.first?.line == 3)
            // A fix loads; a removal unloads.
            try "name: Bad\nagents:\n  - {name: Start, type: webhook}\n".write(
                to: folder.appendingPathComponent("bad.yml"),
                atomically: true,
                encoding: .utf8
            )
            try FileManager.default.removeItem(at: folder.appendingPathComponent("watched.yaml"))
            try await stories.scan()
            #expect(stories.failures.isEmpty)
            #expect(engine.story(named: "Bad") != nil)
            #expect(engine.story(named: "Watched") == nil)
        }
    }

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
            "openssl is not installed: the TLS test cannot make its certificate and is skipped"
        )
    )
    func underTLSTheSessionCookieIsSecure() async throws {
        try await withTemporaryDirectory { certificates in
            let (certificate, key) = try await LoopbackServers.certificate(in: certificates)
            let configuration = WebServerConfiguration(
                port: 0,
                tls: try serverTLS(certificateFile: certificate, keyFile: key)
            )
            try await withWebApplication(configuration: configuration) { web in
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(certificate)
                var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
                clientConfiguration.redirectConfiguration = .disallow
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
                defer { _ = client.shutdown() }
                let secure = WebHarness(
                    engine: web.engine,
                    security: web.security,
                    directory: web.directory,
                    base: web.base.replacingOccurrences(of: "http://127.0.0.1", with: "https://localhost"),
                    client: client
                )
                let page = try await secure.send(.GET, "/login")
                let form = try #require(page.headers["Set-Cookie"].first { $0.hasPrefix("quarry_form=") })
                #expect(form.contains("Secure"))
                let cookie = try await secure.signIn("vic")
                #expect(try await secure.send(.GET, "/runs", cookie: cookie).status == 200)
            }
        }
    }

    @Test func repeatedFailedSignInsAreSlowedDown() async throws {
        try await withWebApplication { web in
            let page = try await web.send(.GET, "/login")
            let formCookie = try #require(WebHarness.cookie(page.headers, "quarry_form"))
            let csrf = try #require(WebHarness.csrf(page.body))
            func attempt() async throws -> (Int, Duration) {
                let started = ContinuousClock.now
                let reply = try await web.send(
                    .POST,
                    "/login",
                    cookie: "quarry_form=\(formCookie)",
                    form: [("_csrf", csrf), ("username", "vic"), ("password", "wrong-password")]
                )
                return (reply.status, .now - started)
            }
            for _ in 0..<6 { #expect(try await attempt().0 == 401) }
            // After five failures each attempt waits first (250 ms, doubling), whatever the password.
            let (status, took) = try await attempt()
            #expect(status == 401)
            #expect(took >= .milliseconds(200))
        }
    }

    @Test(
        .enabled(
            if: (try? runToolBlocking("/usr/bin/env", ["python3", "-c", "import openapi_spec_validator"]).status) == 0,
            "openapi-spec-validator is not installed (pip install openapi-spec-validator): skipped"
        )
    )
    func theOpenAPIDocumentValidatesAndDescribesEveryRoute() async throws {
        try await withWebApplication { web in
            let reply = try await web.send(.GET, "/api/v1/openapi.json")
            #expect(reply.status == 200)
            try await withTemporaryDirectory { directory in
                let file = directory.appendingPathComponent("openapi.json")
                try reply.body.write(to: file, atomically: true, encoding: .utf8)
                let (status, output) = try await runTool(
                    "/usr/bin/env",
                    [
                        "python3", "-c",
                        "import json, sys; from openapi_spec_validator import validate; "
                            + "validate(json.load(open(sys.argv[1]))); print('valid')",
                        file.path,
                    ]
                )
                #expect(status == 0, "\(String(decoding: output, as: UTF8.self))")
            }
            let paths = try #require(reply.json?["paths"]?.objectValue)
            #expect(paths["/api/v1/stories/{story}/runs"]?["post"]?["operationId"]?.stringValue == "startRun")
            #expect(paths["/api/v1/stories/import"]?["post"]?["operationId"]?.stringValue == "importStories")
            #expect(paths["/api/v1/stories/{story}/export"]?["get"]?["operationId"]?.stringValue == "exportStory")
            #expect(paths.count == 13)
        }
    }
}
