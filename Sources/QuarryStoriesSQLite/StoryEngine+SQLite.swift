public import Foundation
public import Logging
public import QuarryStories

extension StoryEngine where EngineClock == ContinuousClock {
    /// An engine over the data directory `directory`: its ``SQLiteStoryStore``, and the vault key from
    /// `QUARRY_SECRET_KEY` in `environment` or `secret.key` in the directory (see ``Vault/Key/load(directory:environment:)``).
    public convenience init(
        directory: URL,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        configuration: Configuration = Configuration(),
        services: AgentServices,
        agents: AgentRegistry,
        logger: Logger = Logger(label: "quarry.stories")
    ) async throws {
        let store = try SQLiteStoryStore(directory: directory)
        try await self.init(
            store: store,
            vaultKey: .load(directory: directory, environment: environment),
            configuration: configuration,
            clock: ContinuousClock(),
            services: services,
            agents: agents,
            logger: logger
        )
    }
}
