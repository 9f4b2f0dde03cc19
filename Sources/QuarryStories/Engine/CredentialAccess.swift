import Foundation
import NIOConcurrencyHelpers
import QuarryCore

/// The credentials one delivery may read, and where it may send them.
///
/// An agent reads only the credentials its story declares (`credentials:`), whatever a template or an option
/// names, so that input cannot make a story hand over a credential it was never meant to use. Every credential
/// read is remembered, and an agent asks ``checkDestination(_:)`` before it connects anywhere: a credential that
/// carries allowed hosts may reach only those.
final class CredentialAccess: Sendable {
    private let vault: Vault
    private let story: String
    private let declared: Set<String>
    private let used = NIOLockedValueBox<Set<String>>([])

    init(vault: Vault, story: Story) {
        self.vault = vault
        self.story = story.name
        self.declared = Set(story.credentials)
    }

    /// The value of credential `name`, or nil when the vault has none; an error when the story does not declare it.
    func value(named name: String) throws -> String? {
        guard declared.contains(name) else {
            throw CredentialAccessError(
                "credential '\(name)' is not declared by story '\(story)': a story reads only the credentials it "
                    + "lists under credentials"
            )
        }
        let value = try vault.credential(name)
        if value != nil { used.withLockedValue { _ = $0.insert(name) } }
        return value
    }

    /// Throws when a credential read in this delivery may not be sent to `host`.
    func checkDestination(_ host: String) throws {
        let host = host.lowercased().trimmingCharacters(in: ["[", "]", "."])
        for name in used.withLockedValue({ $0.sorted() }) {
            guard let allowed = try vault.allowedHosts(name) else { continue }
            if !allowed.contains(where: { Self.matches(host, $0) }) {
                throw CredentialAccessError(
                    "credential '\(name)' may not be sent to \(host) (allowed hosts: \(allowed.joined(separator: ", ")))"
                )
            }
        }
    }

    /// `pattern` is a host name or address, or `*.suffix` for any name under `suffix`.
    static func matches(_ host: String, _ pattern: String) -> Bool {
        if pattern.hasPrefix("*.") { return host.hasSuffix(String(pattern.dropFirst(1))) }
        return host == pattern
    }
}

struct CredentialAccessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
