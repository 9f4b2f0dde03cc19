import Foundation
import MultipartKit
public import QuarryCore
public import QuarryStories

/// `webhook` — where a run starts: the request's body (JSON, form-urlencoded or multipart form data) becomes the
/// first event, with the query parameters and headers when asked.
///
/// Options: `secret` (the last path segment of the webhook URL; required to start it over HTTP), `verbs`
/// (accepted methods, default `post`), `include_headers`, `include_query`, `response` (the body answered, a
/// template; default `{"run": guid}`), `response_code` (default 201).
public struct WebhookAgent: StoryAgent {
    public static let type = AgentDefinition.webhookType
    public static let summary = "Starts a run with an HTTP request's body (JSON, form or multipart)."
    public static let options: [OptionSpec] = [
        OptionSpec(
            "secret",
            .string,
            "The secret path segment: /webhook/<story>/<secret>. Without it the webhook only starts from the CLI or a form."
        ),
        OptionSpec("verbs", .list, "HTTP methods accepted (default post)."),
        OptionSpec("include_headers", .boolean, "Add the request headers to the event under `headers`."),
        OptionSpec("include_query", .boolean, "Add the query parameters to the event under `query`."),
        OptionSpec("response", .any, "The response body (default: the run's guid)."),
        OptionSpec("response_code", .integer, "The response status (default 201)."),
    ]

    public init(definition: AgentDefinition) throws(StoryProblem) {
        if let secret = definition.options["secret"]?.stringValue, secret.count < 16, !secret.contains("{") {
            throw StoryProblem(
                definition.location,
                option: "options.secret",
                "a webhook secret needs at least 16 characters"
            )
        }
    }

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        AgentOutput(events: [input.event])
    }

    /// The event a request starts: the parsed body, plus `query` and `headers` when the options ask for them.
    /// Throws ``AgentError/failed(_:)`` with a clear message when the body does not parse as its content type says.
    public static func event(
        body: [UInt8],
        contentType: String?,
        query: [(String, String)],
        headers: [(String, String)],
        options: JSON
    ) throws -> JSON {
        var event = try parseBody(body, contentType: contentType)
        if event.objectValue == nil { event = ["body": event] }
        if options["include_query"]?.boolValue == true {
            var object = JSONObject()
            for (name, value) in query { object[name] = .string(value) }
            event["query"] = .object(object)
        }
        if options["include_headers"]?.boolValue == true {
            var object = JSONObject()
            for (name, value) in headers where name.lowercased() != "authorization" && name.lowercased() != "cookie" {
                object[name.lowercased()] = .string(value)
            }
            event["headers"] = .object(object)
        }
        return event
    }

    /// `a=1&b=2` as (name, value) pairs, `+` and percent escapes decoded.
    public static func queryParameters(_ text: String) -> [(String, String)] {
        FormEncoding.pairs(text)
    }

    static func parseBody(_ body: [UInt8], contentType: String?) throws -> JSON {
        let type =
            (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            ?? ""
        if body.isEmpty { return .object([:]) }
        switch type {
        case "application/x-www-form-urlencoded":
            return .object(FormEncoding.decode(String(decoding: body, as: UTF8.self)))
        case "multipart/form-data":
            guard let boundary = FormEncoding.parameter("boundary", in: contentType ?? "") else {
                throw AgentError.failed("multipart/form-data body without a boundary parameter")
            }
            return .object(try FormEncoding.multipart(body, boundary: boundary))
        case "text/plain":
            return ["body": .string(String(decoding: body, as: UTF8.self))]
        default:
            do {
                return try JSON.parse(body)
            } catch {
                throw AgentError.failed("the request body is not valid JSON: \(error)")
            }
        }
    }
}

/// `application/x-www-form-urlencoded` and `multipart/form-data`, both ways as far as agents need them.
enum FormEncoding {
    static func decode(_ text: String) -> JSONObject {
        var object = JSONObject()
        for (name, value) in pairs(text) { object[name] = .string(value) }
        return object
    }

    static func pairs(_ text: String) -> [(String, String)] {
        text.split(separator: "&").filter { !$0.isEmpty }.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (unescape(String(parts[0])), parts.count > 1 ? unescape(String(parts[1])) : "")
        }
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? text
    }

    static func encode(_ object: JSONObject) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return object.map { key, value in
            let text = value.stringValue ?? value.serialized()
            return (key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key) + "="
                + (text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text)
        }.joined(separator: "&")
    }

    /// `boundary=abc` out of `multipart/form-data; boundary=abc`.
    static func parameter(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pieces = part.split(separator: "=", maxSplits: 1)
            if pieces.count == 2, pieces[0].trimmingCharacters(in: .whitespaces).lowercased() == name {
                return pieces[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(
                    in: CharacterSet(charactersIn: "\"")
                )
            }
        }
        return nil
    }

    /// The text fields of a multipart body by name; a file part becomes `{filename, content_type, content}`.
    /// MultipartKit's parser splits the parts; the fields are not known in advance, so they become JSON here.
    static func multipart(_ body: [UInt8], boundary: String) throws -> JSONObject {
        guard !boundary.isEmpty else { throw AgentError.failed("multipart/form-data body with an empty boundary") }
        let parser = MultipartParser(boundary: boundary)
        var parts: [(headers: [(String, String)], content: [UInt8])] = []
        var headers: [(String, String)] = []
        var content: [UInt8] = []
        parser.onHeader = { name, value in headers.append((name.lowercased(), value)) }
        parser.onBody = { buffer in content += buffer.readableBytesView }
        parser.onPartComplete = {
            parts.append((headers, content))
            headers = []
            content = []
        }
        do {
            try parser.execute(body)
        } catch {
            throw AgentError.failed("the multipart body does not parse with boundary '\(boundary)'")
        }
        guard !parts.isEmpty else { throw AgentError.failed("multipart body has no part with boundary '\(boundary)'") }
        var object = JSONObject()
        for part in parts {
            let disposition = part.headers.first { $0.0 == "content-disposition" }?.1 ?? ""
            guard let name = parameter("name", in: disposition) else { continue }
            let text = String(decoding: part.content, as: UTF8.self)
            if let filename = parameter("filename", in: disposition) {
                let type = part.headers.first { $0.0 == "content-type" }?.1 ?? "application/octet-stream"
                object[name] = ["filename": .string(filename), "content_type": .string(type), "content": .string(text)]
            } else {
                object[name] = .string(text)
            }
        }
        return object
    }
}
