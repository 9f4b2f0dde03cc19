import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import QuarryCore
public import QuarryStories

/// `http_request` — Tines' HTTP Request agent: sends a request and emits `{body, status, headers}`, `body` parsed
/// when the response is JSON.
///
/// In a dry run only GET requests are sent; others are recorded in the timeline and emit
/// `{dry_run: true, request: {method, url, headers, body}}`: the whole request, with the values of headers that
/// carry secrets replaced (the engine also redacts every credential the run read, in any encoding). Statuses in `retry_on_status` are retried with the agent's backoff; with
/// `fail_on_status` any status of 400 or more fails the agent after the event is recorded in the timeline.
public struct HTTPRequestAgent: StoryAgent {
    public static let type = "http_request"
    public static let summary = "Sends an HTTP request and emits the response."
    public static let destinationOptions = ["url"]
    public static let options: [OptionSpec] = [
        OptionSpec("url", .string, required: true, "The URL."),
        OptionSpec(
            "method",
            .string,
            allowed: ["get", "post", "put", "patch", "delete", "head"],
            "GET (default), POST, PUT, PATCH, DELETE, HEAD."
        ),
        OptionSpec("content_type", .string, "json (default), form, data (text as it is), xml, or a MIME type."),
        OptionSpec("payload", .any, "The body: an object for json and form, text otherwise."),
        OptionSpec("headers", .object, "Request headers."),
        OptionSpec("basic_auth", .any, "user:password, or [user, password]."),
        OptionSpec("disable_ssl_verification", .boolean, "Accept any certificate (never for production endpoints)."),
        OptionSpec("retry_on_status", .list, "Statuses to retry with backoff (such as 429, 503)."),
        OptionSpec(
            "log_error_on_status",
            .list,
            "Statuses recorded as errors in the timeline while the event is still emitted."
        ),
        OptionSpec("fail_on_status", .boolean, "Fail the agent on a status of 400 or more."),
    ]

    public init(definition: AgentDefinition) throws(StoryProblem) {}

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        guard let url = input.string("url"), url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw AgentError.failed("url must be an http(s) URL, got '\(input.string("url") ?? "")'")
        }
        try context.checkDestination(URLComponents(string: url)?.host ?? url)
        let method = (input.string("method") ?? "get").uppercased()
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in input.options["headers"]?.objectValue ?? [:] {
            request.headers.add(name: name, value: value.stringValue ?? value.serialized())
        }
        var credentials: String?
        switch input.options["basic_auth"] {
        case .string(let text)? where !text.isEmpty: credentials = text
        case .array(let parts)? where parts.count == 2:
            credentials = "\(parts[0].stringValue ?? ""):\(parts[1].stringValue ?? "")"
        default: break
        }
        if let credentials {
            request.headers.replaceOrAdd(
                name: "Authorization",
                value: "Basic " + Data(credentials.utf8).base64EncodedString()
            )
        }
        var sentBody: [UInt8]?
        if method != "GET" && method != "HEAD", let payload = input.options["payload"] {
            let (type, body) = Self.encode(payload, contentType: input.string("content_type") ?? "json")
            if !request.headers.contains(name: "Content-Type") {
                request.headers.add(name: "Content-Type", value: type)
            }
            request.body = .bytes(ByteBuffer(bytes: body))
            sentBody = body
        }
        if context.dryRun && method != "GET" {
            var headers = JSONObject()
            for (name, value) in request.headers { headers[name] = .string(Self.shown(header: name, value: value)) }
            let body: JSON = sentBody.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
            var output = AgentOutput(events: [
                [
                    "dry_run": true,
                    "request": [
                        "method": .string(method), "url": .string(url), "headers": .object(headers), "body": body,
                    ],
                ]
            ])
            output.skipped.append("\(method) \(url) not sent")
            return output
        }
        let response: HTTPClientResponse
        var body: ByteBuffer
        let services = try context.builtIn
        let client = input.bool("disable_ssl_verification") ? Self.unverifiedClient : services.httpClient
        do {
            response = try await client.execute(request, timeout: .seconds(Int64(context.agent.timeout)))
            body = try await response.body.collect(upTo: 256 << 20)
        } catch {
            throw AgentError.retryable("\(method) \(url) failed: \(error)")
        }
        let status = Int(response.status.code)
        if input.list("retry_on_status").contains(String(status)) {
            throw AgentError.retryable("\(method) \(url) answered \(status)")
        }
        var headers = JSONObject()
        for (name, value) in response.headers { headers[name.lowercased()] = .string(value) }
        let text = body.readString(length: body.readableBytes) ?? ""
        let isJSON = response.headers.first(name: "Content-Type")?.lowercased().contains("json") ?? false
        let parsed: JSON = isJSON ? ((try? JSON.parse(text)) ?? .string(text)) : .string(text)
        if input.bool("fail_on_status") && status >= 400 {
            throw AgentError.failed("\(method) \(url) answered \(status): \(text.prefix(300))")
        }
        var event: JSONObject = ["body": parsed, "status": .int(Int64(status)), "headers": .object(headers)]
        if input.list("log_error_on_status").contains(String(status)) {
            context.logger.error(
                "http_request answered an error status",
                metadata: ["url": "\(url)", "status": "\(status)"]
            )
            event["error"] = .string("\(method) \(url) answered \(status)")
        }
        return AgentOutput(events: [.object(event)])
    }

    /// A header's value as a dry run shows it: the value of one that carries a secret (`Authorization`, `Cookie`, an
    /// API key or token header) is replaced, keeping an authorization's scheme so that the reader sees which it is.
    static func shown(header name: String, value: String) -> String {
        let lowered = name.lowercased()
        if lowered == "authorization" || lowered == "proxy-authorization" {
            let scheme = value.split(separator: " ", maxSplits: 1).first.map(String.init)
            return scheme.map { value.contains(" ") ? "\($0) [redacted]" : "[redacted]" } ?? "[redacted]"
        }
        let secretWords = ["cookie", "token", "secret", "key", "password", "auth", "signature", "session"]
        return secretWords.contains { lowered.contains($0) } ? "[redacted]" : value
    }

    /// The body and its content type: `json` serializes, `form` url-encodes an object, `data` and `xml` send text.
    static func encode(_ payload: JSON, contentType: String) -> (String, [UInt8]) {
        let text = payload.stringValue ?? payload.serialized()
        switch contentType.lowercased() {
        case "json": return ("application/json", payload.serializedBytes())
        case "form":
            return ("application/x-www-form-urlencoded", Array(FormEncoding.encode(payload.objectValue ?? [:]).utf8))
        case "data": return ("text/plain; charset=utf-8", Array(text.utf8))
        case "xml": return ("application/xml", Array(text.utf8))
        default: return (contentType, Array(text.utf8))
        }
    }

    /// One client for `disable_ssl_verification`, shared, never shut down (it lives as long as the process).
    static let unverifiedClient: HTTPClient = {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return BuiltInServices.makeHTTPClient(tls: tls)
    }()
}
