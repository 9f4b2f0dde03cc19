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
        // The store first: when another process holds it, nothing else has been made that must be shut down.
        var store: EmbeddedStore?
        if openStore {
            do {
                store = try EmbeddedStore(configuration: .init(dataDirectory: dataDirectory))
            } catch {
                if let served = ServedDataDirectory.running(in: dataDirectory) {
                    throw CommandFailure(
                        "quarry serve (pid \(served.pid)) runs on \(dataDirectory.path): start the story there (its "
                            + "web form, or POST /api/v1/stories/<story>/runs), or stop it first"
                    )
                }
                throw error
            }
        }
        var services = BuiltInServices(
            httpClient: BuiltInServices.makeHTTPClient(trustedCertificatesFile: trustedCertificates),
            trustedCertificatesFile: trustedCertificates
        )
        services.defaultResolver =
            resolver
            ?? ProcessInfo.processInfo.environment[BuiltInServices.resolverVariable].flatMap { $0.isEmpty ? nil : $0 }
        if let store { services.defaultCluster = EmbeddedCluster(api: ElasticsearchAPI(store: store)) }
        self.store = store
        self.services = services
        do {
            engine = try await StoryEngine(
                directory: dataDirectory.appendingPathComponent("stories"),
                services: AgentServices(services),
                agents: .builtIn,
                logger: logger
            )
        } catch {
            // The HTTP client must be shut down before it goes (AsyncHTTPClient traps otherwise).
            try? await services.shutdown()
            try? store?.close()
            throw error
        }
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
