import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import QuarryAgents
import QuarryCore
import QuarryStories

/// Starts runs from HTTP: `/webhook/<story>/<secret>` on the web application (the story's name, snake-cased or as
/// written, and the secret its webhook agent declares). A webhook without a secret cannot be started over HTTP; a
/// wrong story and a wrong secret both answer 404 (the secret compared in constant time), so the endpoint reveals
/// nothing. The run and its first event are stored before the response: a 2xx means the run exists. A body that
/// does not parse is recorded as a failed run and answered 400 with the reason.
struct WebhookResponder<EngineClock: Clock>: Sendable where EngineClock.Duration == Duration {
    let engine: StoryEngine<EngineClock>
    let maximumBodySize: Int
    /// Requests being handled, bounded by `maximumConcurrentRequests`.
    private let inFlight = NIOLockedValueBox(0)
    let maximumConcurrentRequests: Int

    init(engine: StoryEngine<EngineClock>, maximumBodySize: Int, maximumConcurrentRequests: Int) {
        self.engine = engine
        self.maximumBodySize = maximumBodySize
        self.maximumConcurrentRequests = maximumConcurrentRequests
    }

    func respond(to request: Request, story name: String, secret: String) async throws -> Response {
        guard let (story, agent, options) = engine.webhook(story: name, secret: secret) else {
            return Self.json(.notFound, ["error": "no such webhook"])
        }
        var verbs = ["POST"]
        switch options["verbs"] {
        case .array(let list)?: verbs = list.compactMap { $0.stringValue?.uppercased() }
        case .string(let text)?:
            verbs = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
        default: break
        }
        guard verbs.contains(request.method.rawValue) else {
            var response = Self.json(
                .methodNotAllowed,
                ["error": .string("this webhook accepts \(verbs.joined(separator: ", "))")]
            )
            response.headers[.allow] = verbs.joined(separator: ", ")
            return response
        }
        let admitted = inFlight.withLockedValue { count in
            guard count < maximumConcurrentRequests else { return false }
            count += 1
            return true
        }
        guard admitted else {
            var response = Self.json(.serviceUnavailable, ["error": "too many webhook requests at once; retry"])
            response.headers[.retryAfter] = "1"
            return response
        }
        defer { inFlight.withLockedValue { $0 -= 1 } }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumBodySize)
        } catch {
            return Self.json(.contentTooLarge, ["error": .string("the body is larger than \(maximumBodySize) bytes")])
        }
        let query = request.uri.query.map { WebhookAgent.queryParameters($0) } ?? []
        let headers = request.headers.map { ($0.name.canonicalName, $0.value) }
        let event: JSON
        do {
            event = try WebhookAgent.event(
                body: Array(body.readableBytesView),
                contentType: request.headers[.contentType],
                query: query,
                headers: headers,
                options: options
            )
        } catch {
            let guid = try? await engine.recordFailedRun(story: story, error: "webhook: \(error)")
            var answer: JSONObject = ["error": .string("\(error)")]
            if let guid { answer["run"] = .string(guid) }
            return Self.json(.badRequest, .object(answer))
        }
        let guid = try await engine.startRun(story: story, entry: agent.key, payload: event)
        let status = options["response_code"]?.intValue.map { HTTPResponse.Status(code: Int($0)) } ?? .created
        if let custom = options["response"], !(custom.stringValue?.isEmpty ?? false) {
            return Self.json(status, custom)
        }
        return Self.json(status, ["run": .string(guid)])
    }

    static func json(_ status: HTTPResponse.Status, _ body: JSON) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body.serializedBytes()))
        )
    }
}
