/// What the process hands to agents — an HTTP client, the default cluster, trusted certificates — keyed by type,
/// so that the engine carries services it knows nothing about.
///
/// The module that defines an agent defines the keys it reads (as Vapor's `Storage` and swift-service-context's
/// keys do), and whoever builds the engine fills them:
///
/// ```swift
/// enum GreetingKey: AgentServiceKey { typealias Value = String }
/// var services = AgentServices()
/// services[GreetingKey.self] = "hello"
/// ```
public struct AgentServices: Sendable {
    private var values: [ObjectIdentifier: any Sendable] = [:]

    public init() {}

    /// The value stored for `key`, or nil.
    public subscript<Key: AgentServiceKey>(_ key: Key.Type) -> Key.Value? {
        get { values[ObjectIdentifier(key)] as? Key.Value }
        set { values[ObjectIdentifier(key)] = newValue }
    }
}

/// A key of ``AgentServices``: a type whose identity names a service and whose `Value` is the service's type.
public protocol AgentServiceKey {
    associatedtype Value: Sendable
}
