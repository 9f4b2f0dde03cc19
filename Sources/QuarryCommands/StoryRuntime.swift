import ArgumentParser
import Foundation
import Logging
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarryPacketbeat
import QuarrySearch
import QuarryServer
import QuarryStories
import QuarryStoriesSQLite

/// The story engine with what it reaches: the embedded store in the data directory (as the default cluster), an
/// HTTP client, and the engine's own state under `stories/`.
final class StoryRuntime {
    let store: EmbeddedStore?
    let engine: StoryEngine<ContinuousClock>
    /// What the built-in agents are handed.
    let services: BuiltInServices

    init(
        dataDirectory: URL,
        openStore: Bool,
        trustedCertificates: String?,
        resolver: String?,
        logger: Logger
    ) async throws {
        var services = BuiltInServices(
            httpClient: BuiltInServices.makeHTTPClient(trustedCertificatesFile: trustedCertificates),
            trustedCertificatesFile: trustedCertificates
        )
        services.defaultResolver =
            resolver
            ?? ProcessInfo.processInfo.environment[BuiltInServices.resolverVariable].flatMap { $0.isEmpty ? nil : $0 }
        if openStore {
            let store = try EmbeddedStore(configuration: .init(dataDirectory: dataDirectory))
            services.defaultCluster = EmbeddedCluster(api: ElasticsearchAPI(store: store))
            self.store = store
        } else {
            store = nil
        }
        self.services = services
        engine = try await StoryEngine(
            directory: dataDirectory.appendingPathComponent("stories"),
            services: AgentServices(services),
            agents: .builtIn,
            logger: logger
        )
    }

    /// Releases what the runtime holds; the engine has stopped already (it runs only inside `withRunning` or a
    /// service group).
    func shutdown() async {
        try? await services.shutdown()
        try? store?.close()
    }

    /// The reference story: `stories/dns-threat-hunt.yaml` under the working directory, or under the checkout the
    /// executable was built in (`.build/<configuration>/quarry`).
    static func referenceStoryPath() -> String? {
        let relative = "stories/dns-threat-hunt.yaml"
        var candidates = [FileManager.default.currentDirectoryPath + "/" + relative]
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent(relative).path)
            directory = directory.deletingLastPathComponent()
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}

/// `key=value` pairs as an event: a value that parses as JSON (a number, `true`, `[…]`, `{…}`) keeps its type,
/// anything else is text.
func inputEvent(_ pairs: [String]) throws -> JSON {
    var object = JSONObject()
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "=") else {
            throw ValidationError("--input takes key=value, got '\(pair)'")
        }
        let value = String(pair[pair.index(after: equals)...])
        object[String(pair[..<equals])] = (try? JSON.parse(value)) ?? .string(value)
    }
    return .object(object)
}
