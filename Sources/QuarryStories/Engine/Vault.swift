import Crypto
public import Foundation
import NIOConcurrencyHelpers
public import QuarryCore

/// Credentials encrypted at rest (AES-GCM, a 256-bit key) and global resources, in the engine's ``StoryStore``.
///
/// A credential's value leaves the vault only to render a template or for an agent that reads it; the engine
/// redacts it from everything it stores or logs.
public final class Vault: Sendable {
    /// The key that seals credentials.
    public struct Key: Sendable {
        let key: SymmetricKey

        /// A new random key: for a store that lives no longer than the process.
        public static func random() -> Key { Key(key: SymmetricKey(size: .bits256)) }

        /// The key from `QUARRY_SECRET_KEY` (base64 of 32 bytes) in `environment`, else from `secret.key` in
        /// `directory`, which is created on first use with mode 0600.
        public static func load(directory: URL, environment: [String: String]) throws -> Key {
            if let encoded = environment["QUARRY_SECRET_KEY"] {
                guard let bytes = Data(base64Encoded: encoded), bytes.count == 32 else {
                    throw VaultError("QUARRY_SECRET_KEY must be the base64 encoding of 32 random bytes")
                }
                return Key(key: SymmetricKey(data: bytes))
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return Key(key: try keyFile(directory.appendingPathComponent("secret.key")))
        }

        /// Reads the key file, or creates it (0600, written before anything is encrypted with it).
        private static func keyFile(_ url: URL) throws -> SymmetricKey {
            if let data = try? Data(contentsOf: url) {
                guard
                    let bytes = Data(
                        base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(
                            in: .whitespacesAndNewlines
                        )
                    ),
                    bytes.count == 32
                else {
                    throw VaultError("\(url.path) is not a Quarry secret key (base64 of 32 bytes)")
                }
                return SymmetricKey(data: bytes)
            }
            let key = SymmetricKey(size: .bits256)
            let encoded = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
            let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw VaultError("cannot create \(url.path): \(String(cString: strerror(errno)))")
            }
            defer { close(descriptor) }
            let written = encoded.withCString { write(descriptor, $0, strlen($0)) }
            guard written == encoded.utf8.count, fsync(descriptor) == 0 else {
                throw VaultError("cannot write \(url.path): \(String(cString: strerror(errno)))")
            }
            return key
        }
    }

    private let store: any StoryStore
    private let key: SymmetricKey
    private let now: @Sendable () -> Double
    /// Every value this process has decrypted. A credential reaches an event, a message or a log line only
    /// through a value handed out here, so redacting these is enough, stays right when another process (`quarry
    /// credentials set` beside `quarry serve`) changes a credential, and costs no store read per event.
    private let handedOut = NIOLockedValueBox<Set<String>>([])

    init(store: any StoryStore, key: Key, now: @escaping @Sendable () -> Double) {
        self.store = store
        self.key = key.key
        self.now = now
    }

    // MARK: Credentials

    /// Stores credential `name`. With `allowedHosts`, agents may send it only to those hosts (`es.example`, or
    /// `*.example` for any name under it), as Tines' credentials carry allowed domains; without, to any host.
    public func setCredential(_ name: String, value: String, allowedHosts: [String]? = nil) throws {
        let sealed = try AES.GCM.seal(Data(value.utf8), using: key, authenticating: Data(name.utf8))
        guard let combined = sealed.combined else { throw VaultError("cannot seal credential \(name)") }
        try store.saveSealedCredential(
            SealedCredential(name: name, sealed: combined, allowedHosts: allowedHosts?.map { $0.lowercased() }),
            at: now()
        )
    }

    /// The hosts credential `name` may be sent to; nil when it may go anywhere (or does not exist).
    public func allowedHosts(_ name: String) throws -> [String]? {
        try store.sealedCredential(name)?.allowedHosts
    }

    /// The value of credential `name`, or nil when there is none. The name is authenticated with the value, so a
    /// sealed value copied to another name does not open.
    public func credential(_ name: String) throws -> String? {
        guard let combined = try store.sealedCredential(name)?.sealed else { return nil }
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            let value = String(
                decoding: try AES.GCM.open(box, using: key, authenticating: Data(name.utf8)),
                as: UTF8.self
            )
            handedOut.withLockedValue { _ = $0.insert(value) }
            return value
        } catch {
            throw VaultError("credential \(name) cannot be decrypted with this key (QUARRY_SECRET_KEY or secret.key)")
        }
    }

    /// The credential values to redact from everything the engine stores or logs: all this process handed out.
    var redactedValues: [String] { Array(handedOut.withLockedValue { $0 }) }

    public func credentialNames() throws -> [String] {
        try store.credentialNames()
    }

    @discardableResult
    public func removeCredential(_ name: String) throws -> Bool {
        try store.removeCredential(name)
    }

    // MARK: Resources

    /// Sets a global resource: JSON when `value` parses as a JSON object or array, text otherwise.
    public func setResource(_ name: String, value: String) throws {
        try store.saveResource(name, value: value, at: now())
    }

    public func resource(_ name: String) throws -> JSON? {
        guard let text = try store.resource(name) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("["), let json = try? JSON.parse(trimmed) { return json }
        return .string(text)
    }

    public func resourceNames() throws -> [String] {
        try store.resourceNames()
    }

    @discardableResult
    public func removeResource(_ name: String) throws -> Bool {
        try store.removeResource(name)
    }
}

public struct VaultError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
