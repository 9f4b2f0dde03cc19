import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryStories

/// What a signed-in user may do in the web application, from the roles of their user (the same users as the
/// Elasticsearch API's): `admin` or `superuser` everything, `analyst` or `editor` run hunts and read runs,
/// `viewer` read. A user with none of these cannot sign in.
enum WebRole: Int, Comparable, Sendable {
    case viewer, analyst, admin

    init?(roles: [String]) {
        if roles.contains(where: { $0 == "admin" || $0 == "superuser" }) {
            self = .admin
        } else if roles.contains(where: { $0 == "analyst" || $0 == "editor" }) {
            self = .analyst
        } else if roles.contains("viewer") {
            self = .viewer
        } else {
            return nil
        }
    }

    var name: String {
        switch self {
        case .viewer: "viewer"
        case .analyst: "analyst"
        case .admin: "admin"
        }
    }

    static func < (a: WebRole, b: WebRole) -> Bool { a.rawValue < b.rawValue }
}

/// A user of a request: signed in with a session cookie, or calling the API with their token.
struct WebUser: Sendable {
    var username: String
    var role: WebRole
    /// The session cookie's value; nil for an API token.
    var session: String?

    /// The CSRF token of the session's forms: derived from the session (which the browser keeps in an `HttpOnly`
    /// cookie another site cannot read), so nothing more is stored.
    var csrf: String { session.map(WebSite<ContinuousClock>.csrfToken) ?? "" }
}

/// The web application's state and its routes: the engine, the users, the store's numbers and the metrics.
struct WebSite<EngineClock: Clock>: Sendable where EngineClock.Duration == Duration {
    static var sessionCookie: String { "quarry_session" }
    /// The CSRF cookie of forms shown before sign-in (the sign-in form, public forms): double-submitted.
    static var formCookie: String { "quarry_form" }

    let engine: StoryEngine<EngineClock>
    let security: ElasticsearchSecurity
    let store: EmbeddedStore?
    let stories: StoryDirectory<EngineClock>?
    let configuration: WebServerConfiguration
    let metrics: WebMetrics
    let webhooks: WebhookResponder<EngineClock>

    init(
        engine: StoryEngine<EngineClock>,
        security: ElasticsearchSecurity,
        store: EmbeddedStore?,
        stories: StoryDirectory<EngineClock>?,
        configuration: WebServerConfiguration
    ) {
        self.engine = engine
        self.security = security
        self.store = store
        self.stories = stories
        self.configuration = configuration
        metrics = WebMetrics()
        webhooks = WebhookResponder(
            engine: engine,
            maximumBodySize: configuration.maximumWebhookBodySize,
            maximumConcurrentRequests: configuration.maximumConcurrentWebhooks
        )
        let metrics = metrics
        engine.observe { [weak engine] observation in
            metrics.record(observation) { story, agent in
                engine?.story(named: story)?.agents.first { $0.key == agent }?.type ?? "unknown"
            }
        }
    }

    /// Cookies are `Secure` when people reach the application over HTTPS.
    var secureCookies: Bool {
        configuration.tls != nil || configuration.publicURL?.lowercased().hasPrefix("https://") == true
    }

    func router() -> Router<WebRequestContext> {
        let router = Router(context: WebRequestContext.self)
        router.add(middleware: WebMiddleware(security: security, metrics: metrics))
        router.get("/healthz") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))
            )
        }
        router.get("/static/app.css") { _, _ in Self.asset(WebTemplates.css, type: "text/css; charset=utf-8") }
        router.get("/static/app.js") { _, _ in
            Self.asset(WebTemplates.javascript, type: "text/javascript; charset=utf-8")
        }
        router.get("/") { _, _ in Response.redirect(to: "/stories") }
        router.get("/metrics") { request, context in try await metricsPage(request, context) }
        addSignInRoutes(to: router)
        addStoryRoutes(to: router)
        addFormRoutes(to: router)
        addRunRoutes(to: router)
        addSecretRoutes(to: router)
        addAPIRoutes(to: router)
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/webhook/:story/:secret", method: method) { request, context in
                try await webhooks.respond(
                    to: request,
                    story: context.parameters.get("story") ?? "",
                    secret: context.parameters.get("secret") ?? ""
                )
            }
        }
        return router
    }

    // MARK: Who is asking

    static func csrfToken(for session: String) -> String {
        SHA256.hash(data: Data("quarry-csrf:\(session)".utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The signed-in user of a page, with at least `role`: otherwise a redirect to the sign-in page (no session) or
    /// a 403 page.
    func pageUser(_ role: WebRole, _ request: Request, _ context: WebRequestContext) throws -> WebUser {
        guard let user = context.user, user.session != nil else {
            let target = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~/")
            throw PageFailure(
                redirectTo: "/login?next=" + (target.addingPercentEncoding(withAllowedCharacters: allowed) ?? "/")
            )
        }
        guard user.role >= role else {
            throw PageFailure(
                status: .forbidden,
                heading: "Not allowed",
                message: "Your role (\(user.role.name)) does not allow this; it needs \(role.name).",
                user: user
            )
        }
        return user
    }

    /// Checks the CSRF token of a form posted by a signed-in user or, before sign-in, against the form cookie.
    func checkCSRF(_ form: [String: String], _ request: Request, _ context: WebRequestContext) throws {
        let given = form["_csrf"] ?? ""
        let expected: String
        if let session = context.user?.session {
            expected = Self.csrfToken(for: session)
        } else {
            expected = request.cookies[Self.formCookie]?.value ?? ""
        }
        guard !expected.isEmpty, ConstantTime.equal(given, expected) else {
            throw PageFailure(
                status: .forbidden,
                heading: "The form has expired",
                message: "This form came from an old page or another site. Reload the page and submit it again.",
                user: context.user
            )
        }
    }

    /// The fields of a URL-encoded form body (the last value of a repeated name).
    func formFields(_ request: Request, _ context: WebRequestContext) async throws -> [String: String] {
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        var fields: [String: String] = [:]
        let contentType = request.headers[.contentType] ?? ""
        if contentType.lowercased().hasPrefix("multipart/form-data") {
            // A file input (the import form): its content is the field's value.
            let parsed: JSON
            do {
                parsed = try WebhookAgent.event(
                    body: Array(buffer: body),
                    contentType: contentType,
                    query: [],
                    headers: [],
                    options: [:]
                )
            } catch {
                throw HTTPError(.badRequest, message: "The form's upload does not parse: \(error)")
            }
            for (name, value) in parsed.objectValue ?? [:] {
                fields[name] = value.stringValue ?? value["content"]?.stringValue
            }
            return fields
        }
        for (name, value) in WebhookAgent.queryParameters(String(buffer: body)) { fields[name] = value }
        return fields
    }

    // MARK: Rendering

    /// A page in the layout, with the signed-in user's navigation.
    func page(
        _ template: String,
        title: String,
        _ values: [String: Any],
        user: WebUser?,
        status: HTTPResponse.Status = .ok,
        live: String? = nil,
        notice: String? = nil
    ) -> Response {
        var values = values
        if let user {
            values["csrf"] = values["csrf"] ?? user.csrf
            values["canRun"] = user.role >= .analyst
            values["canEdit"] = user.role >= .admin
        }
        var layout: [String: Any] = [:]
        if let user, user.session != nil { layout["user"] = ["username": user.username, "csrf": user.csrf] }
        if let live { layout["live"] = live }
        if let notice { layout["notice"] = notice }
        return Self.html(WebTemplates.render(template, title: title, context: values, layout: layout), status: status)
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=3600"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    /// A cookie scoped to the whole application, `HttpOnly` and `SameSite=Lax`, `Secure` under HTTPS.
    func cookie(_ name: String, _ value: String, maxAge: Int?) -> Cookie {
        Cookie(
            name: name,
            value: value,
            maxAge: maxAge,
            path: "/",
            secure: secureCookies,
            httpOnly: true,
            sameSite: .lax
        )
    }

    /// The form cookie of a page shown before sign-in: the request's, or a new one to set.
    func formToken(_ request: Request) -> (value: String, isNew: Bool) {
        if let existing = request.cookies[Self.formCookie]?.value, existing.count >= 32 { return (existing, false) }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return (bytes.map { String(format: "%02x", $0) }.joined(), true)
    }

    // MARK: Stories

    /// The story a URL names: by name, or snake-cased (`dns_threat_hunt`).
    func story(_ id: String) -> Story? {
        if let story = engine.story(named: id) { return story }
        let key = Story.snakeCase(id)
        return engine.storyNames.lazy.compactMap { engine.story(named: $0) }.first { Story.snakeCase($0.name) == key }
    }

    static func storyPath(_ story: Story) -> String { "/stories/" + Story.snakeCase(story.name) }

    static func formPath(_ story: Story) -> String { "/forms/" + Story.snakeCase(story.name) }

    func notFound(_ what: String, user: WebUser?) -> PageFailure {
        PageFailure(status: .notFound, heading: "Not found", message: what, user: user)
    }

    // MARK: Formatting

    static func time(_ seconds: Double?) -> String { seconds.map(ReadableTime.timestamp) ?? "" }

    static func duration(_ seconds: Double) -> String { ReadableTime.duration(seconds) }
}

/// A page that ends a request early: a redirect (to sign in) or an error page, thrown from a handler.
struct PageFailure: HTTPResponseError {
    var status: HTTPResponse.Status
    var heading = ""
    var message = ""
    var location: String?
    var user: WebUser?

    init(status: HTTPResponse.Status, heading: String, message: String, user: WebUser?) {
        self.status = status
        self.heading = heading
        self.message = message
        self.user = user
    }

    init(redirectTo location: String) {
        status = .seeOther
        self.location = location
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        if let location { return Response.redirect(to: location) }
        var layout: [String: Any] = [:]
        if let user, user.session != nil { layout["user"] = ["username": user.username, "csrf": user.csrf] }
        let text = WebTemplates.render(
            "message",
            title: heading,
            context: [
                "heading": heading, "message": message, "link": ["href": "/stories", "text": "Back to stories"],
            ],
            layout: layout
        )
        return WebSite<ContinuousClock>.html(text, status: status)
    }
}
