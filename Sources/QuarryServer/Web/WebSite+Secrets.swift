import Hummingbird
import Logging
import QuarryCore
import QuarryStories

/// Credentials (sealed in the vault, write-only: no page or API response ever shows a value) and global
/// resources (settings such as the SMTP server, shown).
extension WebSite {
    enum SecretKind: String {
        case credentials, resources

        var isSecret: Bool { self == .credentials }
        /// Reading the page: credentials' names are for admins, resources for anyone signed in.
        var readRole: WebRole { isSecret ? .admin : .viewer }
    }

    func addSecretRoutes(to router: Router<WebRequestContext>) {
        for kind in [SecretKind.credentials, .resources] {
            router.get("/\(kind.rawValue)") { request, context in
                let user = try pageUser(kind.readRole, request, context)
                return try secretsPage(kind, user: user, error: nil)
            }
            router.post("/\(kind.rawValue)") { request, context in
                let user = try pageUser(.admin, request, context)
                let form = try await formFields(request, context)
                try checkCSRF(form, request, context)
                let name = form["name"] ?? ""
                let value = form["value"] ?? ""
                if let problem = Self.secretNameProblem(name) {
                    return try secretsPage(kind, user: user, error: problem, status: .unprocessableContent)
                }
                try setSecret(kind, name: name, value: value)
                context.logger.notice(
                    "\(kind.isSecret ? "credential" : "resource") saved",
                    metadata: ["name": "\(name)", "user": "\(user.username)"]
                )
                return Response.redirect(to: "/\(kind.rawValue)")
            }
            router.post("/\(kind.rawValue)/:name/delete") { request, context in
                let user = try pageUser(.admin, request, context)
                let form = try await formFields(request, context)
                try checkCSRF(form, request, context)
                let name = context.parameters.get("name") ?? ""
                guard try removeSecret(kind, name: name) else {
                    throw notFound("There is no such \(kind.isSecret ? "credential" : "resource").", user: user)
                }
                context.logger.notice(
                    "\(kind.isSecret ? "credential" : "resource") deleted",
                    metadata: ["name": "\(name)", "user": "\(user.username)"]
                )
                return Response.redirect(to: "/\(kind.rawValue)")
            }
        }
    }

    /// Names as the vault's templates reference them: letters, digits, `_` and `-`.
    static func secretNameProblem(_ name: String) -> String? {
        if name.isEmpty || name.count > 200
            || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        {
            return "A name is 1 to 200 letters, digits, '_' or '-'."
        }
        return nil
    }

    func setSecret(_ kind: SecretKind, name: String, value: String) throws {
        switch kind {
        case .credentials: try engine.vault.setCredential(name, value: value)
        case .resources: try engine.vault.setResource(name, value: value)
        }
    }

    func removeSecret(_ kind: SecretKind, name: String) throws -> Bool {
        switch kind {
        case .credentials: try engine.vault.removeCredential(name)
        case .resources: try engine.vault.removeResource(name)
        }
    }

    func secretsPage(
        _ kind: SecretKind,
        user: WebUser,
        error: String?,
        status: HTTPResponse.Status = .ok
    ) throws -> Response {
        let names = kind.isSecret ? try engine.vault.credentialNames() : try engine.vault.resourceNames()
        let items: [[String: Any]] = try names.map { name in
            var item: [String: Any] = ["name": name, "deleteAction": "/\(kind.rawValue)/\(name)/delete"]
            if kind.isSecret {
                item["hidden"] = "set (write-only)"
            } else if let value = try engine.vault.resource(name) {
                item["value"] = value.stringValue ?? value.serialized()
            }
            return item
        }
        var values: [String: Any] = [
            "heading": kind.isSecret ? "Credentials" : "Resources",
            "explanation": kind.isSecret
                ? "Secrets stories use with {% credential NAME %}: sealed at rest, never shown again, redacted from "
                    + "events and logs."
                : "Settings stories share with {{ .RESOURCE.NAME }}: text, or JSON objects and lists.",
            "valueHeading": kind.isSecret ? "Value" : "Value", "items": items, "hasItems": !items.isEmpty,
            "action": "/\(kind.rawValue)", "isSecret": kind.isSecret,
        ]
        if let error { values["error"] = error }
        return page(
            "secrets",
            title: kind.isSecret ? "Credentials" : "Resources",
            values,
            user: user,
            status: status
        )
    }

    // MARK: Metrics

    /// `/metrics` for a signed-in user or an API token (Prometheus' `authorization` setting): story names and
    /// counts are not for anyone who can reach the port.
    func metricsPage(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        guard context.user != nil else {
            return APIFailure(.unauthorized, "unauthorized", "a session or an API token (Bearer) is required")
                .plainResponse()
        }
        let text = metrics.emit(
            queueDepth: try? await engine.pendingDeliveries(),
            stories: engine.storyNames.count,
            store: store
        )
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: .init(string: text))
        )
    }
}
