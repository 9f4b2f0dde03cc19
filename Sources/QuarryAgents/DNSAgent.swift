import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuarryCore
import QuarryDNS
public import QuarryStories

/// `dns` — resolves a name over DNS-over-HTTPS (RFC 8484 wire format by GET or POST, or the JSON API of
/// Cloudflare and Google), or plain DNS over UDP or TCP. Whatever the transport, the event has the JSON API's
/// shape: `{Status, TC, RD, RA, AD, CD, Question: [{name, type}], Answer: [{name, type, TTL, data}]}`; with
/// several `type`s, one query each, answers together and `Status` the first that is not 0.
public struct DNSAgent: StoryAgent {
    public static let type = "dns"
    public static let summary = "Resolves a name over DoH (RFC 8484 or JSON) or plain DNS (UDP/TCP)."
    static let types = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "SOA", "SRV", "CAA"]
    public static let destinationOptions = ["resolver"]
    public static let options: [OptionSpec] = [
        OptionSpec(
            "name",
            .string,
            required: true,
            "The name to resolve (for PTR, an address is turned into its reverse name)."
        ),
        OptionSpec("type", .list, "Record types: \(types.joined(separator: ", ")) (default A)."),
        OptionSpec(
            "resolver",
            .string,
            "https://…/dns-query (DoH), udp://host:port, tcp://host:port, system or none (default: QUARRY_RESOLVER, "
                + "else the resource `resolver`, else Cloudflare's DoH service)."
        ),
        OptionSpec(
            "format",
            .string,
            allowed: ["wire", "json"],
            "DoH: wire (RFC 8484, default) or json (application/dns-json)."
        ),
        OptionSpec("method", .string, allowed: ["get", "post"], "DoH wire format: GET (default) or POST."),
        OptionSpec(
            "on_error",
            .string,
            allowed: ["fail", "emit"],
            "fail (default), or emit {error, Answer: []} once the attempts are spent, so the story goes on."
        ),
    ]

    public init(definition: AgentDefinition) throws(StoryProblem) {
        for type in Self.listed(definition.options["type"])
        where !type.contains("{") && !Self.types.contains(type.uppercased()) {
            throw StoryProblem(
                definition.location,
                option: "options.type",
                "unsupported type '\(type)' (\(Self.types.joined(separator: ", ")))"
            )
        }
    }

    static func listed(_ value: JSON?) -> [String] {
        switch value {
        case .string(let text)?: return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case .array(let items)?: return items.compactMap(\.stringValue)
        default: return []
        }
    }

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        guard let name = input.string("name")?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            throw AgentError.failed("name rendered empty")
        }
        let types = input.list("type").isEmpty ? ["A"] : input.list("type").map { $0.uppercased() }
        var target = input.string("resolver") ?? ""
        if target.isEmpty { target = try context.builtIn.resolver(resource: try context.resource("resolver")) }
        if target == "none" { return AgentOutput(events: [["skipped": true, "Status": .null, "Answer": []]]) }
        if target == "system" { target = DNSResolver.systemResolver() }
        do {
            return try await resolve(name, types: types, target: target, input: input, context: context)
        } catch let error as AgentError {
            guard input.string("on_error") == "emit",
                context.attempt >= context.agent.retry.maximumAttempts || !error.isRetryable
            else { throw error }
            return AgentOutput(events: [["error": .string(error.description), "Status": .null, "Answer": []]])
        }
    }

    private func resolve(
        _ originalName: String,
        types: [String],
        target: String,
        input: AgentInput,
        context: AgentContext
    ) async throws -> AgentOutput {
        var name = originalName
        let host =
            target.contains("://")
            ? URLComponents(string: target)?.host ?? target : DNSResolver.hostAndPort(target, defaultPort: 53).0
        try context.checkDestination(host)
        let resolver = DNSResolver(
            target: target,
            format: input.string("format") ?? "wire",
            usePost: input.string("method")?.lowercased() == "post",
            client: try context.builtIn.httpClient
        )
        var status: Int64 = 0
        var questions: [JSON] = []
        var answers: [JSON] = []
        var flags: JSONObject = [:]
        for type in types {
            guard let dnsType = DNSType(name: type), Self.types.contains(type) else {
                throw AgentError.failed("unsupported type '\(type)'")
            }
            if dnsType == .ptr, let address = IPAddress(name) { name = DNSResolver.reverseName(address) }
            let result = try await resolver.resolve(name, type: dnsType)
            if status == 0, let code = result["Status"]?.intValue { status = code }
            questions += result["Question"]?.arrayValue ?? []
            answers += result["Answer"]?.arrayValue ?? []
            for flag in ["TC", "RD", "RA", "AD", "CD"] { flags[flag] = result[flag] ?? false }
        }
        var event: JSONObject = ["Status": .int(status)]
        for (flag, value) in flags { event[flag] = value }
        event["Question"] = .array(questions)
        event["Answer"] = .array(answers)
        return AgentOutput(events: [.object(event)])
    }
}
