import Foundation
import HTTPTypes
import Hummingbird
import Logging
import QuarryCore
import QuarryStories

// MARK: Forms

extension WebSite {
    func addFormRoutes(to router: Router<WebRequestContext>) {
        router.get("/forms/:story") { request, context in
            let user = try pageUser(.analyst, request, context)
            let (story, form) = try storyForm(context, user: user)
            let dryRun = request.uri.queryParameters.get("dry_run") == "true"
            return formPage(story, form, user: user, action: Self.formPath(story), values: nil, dryRun: dryRun)
        }
        router.post("/forms/:story") { request, context in
            let user = try pageUser(.analyst, request, context)
            let (story, form) = try storyForm(context, user: user)
            let fields = try await formFields(request, context)
            try checkCSRF(fields, request, context)
            let dryRun = fields["_dry_run"] == "true"
            switch Self.validate(form, fields) {
            case .failure(let errors):
                return formPage(
                    story,
                    form,
                    user: user,
                    action: Self.formPath(story),
                    values: fields,
                    errors: errors.fields,
                    dryRun: dryRun
                )
            case .success(let payload):
                let guid = try await startRun(
                    story,
                    payload: payload,
                    dryRun: dryRun,
                    by: user,
                    from: "a form",
                    context
                )
                return Response.redirect(to: "/runs/\(guid)")
            }
        }
        // Public forms: anyone holding the link (which carries a secret of the story's webhook) may start a run.
        router.get("/forms/:story/:secret") { request, context in
            let (story, form, action) = try publicForm(context)
            let token = formToken(request)
            var response = formPage(
                story,
                form,
                user: nil,
                action: action,
                values: nil,
                csrf: token.value,
                submitted: request.uri.queryParameters.get("submitted")
            )
            if token.isNew { response.setCookie(cookie(Self.formCookie, token.value, maxAge: nil)) }
            return response
        }
        router.post("/forms/:story/:secret") { request, context in
            let (story, form, action) = try publicForm(context)
            let fields = try await formFields(request, context)
            var anonymous = context
            anonymous.user = nil
            try checkCSRF(fields, request, anonymous)
            switch Self.validate(form, fields) {
            case .failure(let errors):
                return formPage(
                    story,
                    form,
                    user: nil,
                    action: action,
                    values: fields,
                    errors: errors.fields,
                    csrf: fields["_csrf"] ?? ""
                )
            case .success(let payload):
                let guid = try await startRun(story, payload: payload, by: nil, from: "a public form", context)
                // Someone who is signed in goes to the run's page; anyone else back to the form, told it started.
                if context.user?.session != nil { return Response.redirect(to: "/runs/\(guid)") }
                return Response.redirect(to: action + "?submitted=\(guid)")
            }
        }
    }

    func storyForm(_ context: WebRequestContext, user: WebUser) throws -> (Story, StoryForm) {
        let story = try existingStory(context, user: user)
        guard let form = story.form else { throw notFound("This story has no form.", user: user) }
        return (story, form)
    }

    /// A public form and its URL; a missing story, a private form and a wrong secret are the same 404.
    func publicForm(_ context: WebRequestContext) throws -> (Story, StoryForm, String) {
        let id = context.parameters.get("story") ?? ""
        let secret = context.parameters.get("secret") ?? ""
        guard let story = story(id), let form = story.form, form.isPublic,
            engine.webhook(story: story.name, secret: secret) != nil
        else { throw notFound("There is no such form.", user: context.user) }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return (
            story, form,
            Self.formPath(story) + "/" + (secret.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        )
    }

    func formPage(
        _ story: Story,
        _ form: StoryForm,
        user: WebUser?,
        action: String,
        values: [String: String]?,
        errors: [String: String] = [:],
        dryRun: Bool = false,
        csrf: String? = nil,
        submitted: String? = nil
    ) -> Response {
        let fields: [[String: Any]] = form.fields.map { field in
            let given = values?[field.name] ?? (values == nil ? field.defaultValue.map(Self.text) : nil) ?? ""
            var row: [String: Any] = [
                "name": field.name, "label": field.label, "required": field.required, "value": given,
                "isBoolean": field.type == "boolean", "isTextarea": field.type == "textarea",
                "isSelect": field.type == "select",
                "isInput": !["boolean", "textarea", "select"].contains(field.type),
                "inputType": ["email", "number"].contains(field.type) ? field.type : "text",
                "checked": ["true", "on", "1", "yes"].contains(given.lowercased()),
                "options": field.options.map { ["text": $0, "selected": $0 == given] },
            ]
            if let error = errors[field.name] { row["error"] = error }
            return row
        }
        var context: [String: Any] = [
            "title": form.title.isEmpty ? story.name : form.title, "description": form.description,
            "fields": fields, "action": action, "hasErrors": !errors.isEmpty, "isPublic": user == nil,
        ]
        if let csrf { context["csrf"] = csrf }
        if let submitted { context["submitted"] = submitted }
        if dryRun { context["dryRun"] = true }
        return page(
            "form",
            title: form.title.isEmpty ? story.name : form.title,
            context,
            user: user,
            status: errors.isEmpty ? .ok : .unprocessableContent
        )
    }

    static func text(_ value: JSON) -> String { value.stringValue ?? value.serialized() }

    /// Checks the posted fields against the form (required, email, number, one of the options) and makes the
    /// run's event: booleans as `true`/`false`, numbers as numbers, empty optional fields left out so that the
    /// story's defaults apply. Fields the form does not declare are ignored.
    static func validate(_ form: StoryForm, _ posted: [String: String]) -> Result<JSON, FormErrors> {
        var payload = JSONObject()
        var errors: [String: String] = [:]
        for field in form.fields {
            let value = (posted[field.name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if field.type == "boolean" {
                payload[field.name] = .bool(["true", "on", "1", "yes"].contains(value.lowercased()))
                continue
            }
            if value.isEmpty {
                if field.required { errors[field.name] = "\(field.label) is required." }
                continue
            }
            if value.count > 10_000 {
                errors[field.name] = "\(field.label) is longer than 10,000 characters."
                continue
            }
            switch field.type {
            case "number":
                if let integer = Int64(value) {
                    payload[field.name] = .int(integer)
                } else if let number = Double(value), number.isFinite {
                    payload[field.name] = .double(number)
                } else {
                    errors[field.name] = "\(field.label) must be a number."
                }
            case "email":
                let addresses = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if addresses.allSatisfy({ $0.wholeMatch(of: /[^@\s,<>"]+@[^@\s,<>"]+\.[^@\s,<>".]+/) != nil }) {
                    payload[field.name] = .string(value)
                } else {
                    errors[field.name] = "\(field.label) must be an email address (several separated by commas)."
                }
            case "select":
                if field.options.contains(value) {
                    payload[field.name] = .string(value)
                } else {
                    errors[field.name] = "\(field.label) must be one of: \(field.options.joined(separator: ", "))."
                }
            default:
                payload[field.name] = .string(value)
            }
        }
        return errors.isEmpty ? .success(.object(payload)) : .failure(FormErrors(fields: errors))
    }
}

/// The message of each field that failed validation, by field name.
struct FormErrors: Error {
    var fields: [String: String]
}
