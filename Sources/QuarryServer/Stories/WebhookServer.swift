import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import QuarryAgents
import QuarryCore
public import QuarryStories

/// Starts runs from HTTP: `POST /webhook/<story>/<secret>` (the story's name, snake-cased or as written, and the
/// secret its webhook agent declares). A webhook without a secret cannot be started over HTTP; a wrong story or a
/// wrong secret both answer 404, so the endpoint reveals nothing. A body that does not parse is recorded as a
/// failed run and answered 400 with the reason.
public struct WebhookResponder<EngineClock: Clock>: HTTPResponder where EngineClock.Duration == Duration {
    public typealias Context = BasicRequestContext

    let engine: StoryEngine<EngineClock>
    let maximumBodySize: Int

    public init(engine: StoryEngine<EngineClock>, maximumBodySize: Int = 10 << 20) {
        self.engine = engine
        self.maximumBodySize = maximumBodySize
    }

    public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let path = (request.head.path ?? "/").split(separator: "?", maxSplits: 1)
        let segments = path[0].split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        guard segments.count == 3, segments[0] == "webhook",
            let (story, agent, options) = engine.webhook(story: segments[1], secret: segments[2])
        else {
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
            return Self.json(
                .methodNotAllowed,
                ["error": .string("this webhook accepts \(verbs.joined(separator: ", "))")]
            )
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumBodySize)
        } catch {
            return Self.json(.contentTooLarge, ["error": .string("the body is larger than \(maximumBodySize) bytes")])
        }
        let query = path.count == 2 ? WebhookAgent.queryParameters(String(path[1])) : []
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

/// Builds the HTTP application serving the stories' webhooks.
public func buildWebhookApplication<EngineClock: Clock>(
    engine: StoryEngine<EngineClock>,
    host: String,
    port: Int,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        responder: WebhookResponder(engine: engine),
        configuration: .init(address: .hostname(host, port: port), serverName: nil),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}
