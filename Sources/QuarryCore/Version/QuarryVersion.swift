/// Quarry's own version: `quarry --version`, and the `agent.version` of the documents it decodes.
public enum QuarryVersion {
    public static let number = "0.1.0"
}
