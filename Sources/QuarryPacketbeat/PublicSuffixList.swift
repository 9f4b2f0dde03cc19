import Foundation
import Synchronization

/// The Public Suffix List, for the registered domain of a name (`www.example.co.uk` → `example.co.uk`), as
/// Packetbeat fills `dns.question.registered_domain` and `etld_plus_one`.
///
/// Both the ICANN and the private sections apply, as in Go's `publicsuffix` package that Packetbeat uses. Rules
/// are the list's: plain, wildcard (`*.ck`) and exception (`!www.ck`); a name no rule matches has its last label as
/// its public suffix (the `*` default rule).
public struct PublicSuffixList: Sendable {
    private var rules: Set<String> = []
    private var wildcards: Set<String> = []
    private var exceptions: Set<String> = []
    /// Names repeat in DNS traffic; their parts are remembered (up to a bound).
    private let cache = PartsCache()

    /// The copy bundled with Quarry (see `Resources/README.md` for where it came from).
    public static let bundled: PublicSuffixList = {
        guard let url = Bundle.module.url(forResource: "public_suffix_list", withExtension: "dat"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return PublicSuffixList(text: "") }
        return PublicSuffixList(text: text)
    }()

    public init(text: String) {
        for line in text.split(whereSeparator: \.isNewline) {
            let rule = line.prefix { !$0.isWhitespace }
            if rule.isEmpty || rule.hasPrefix("//") { continue }
            let lowered = rule.lowercased()
            if lowered.hasPrefix("!") {
                exceptions.insert(String(lowered.dropFirst()))
            } else if lowered.hasPrefix("*.") {
                wildcards.insert(String(lowered.dropFirst(2)))
            } else {
                rules.insert(lowered)
            }
        }
    }

    public struct Parts: Equatable, Sendable {
        /// The public suffix (`co.uk`).
        public var topLevelDomain: String
        /// The public suffix and one more label (`example.co.uk`); nil when the name is itself a public suffix.
        public var registeredDomain: String?
        /// What is left of the registered domain (`www`); nil when there is nothing.
        public var subdomain: String?
    }

    /// Splits `name` (with or without a trailing dot, any case).
    public func parts(of name: String) -> Parts? {
        if let cached = cache.parts(for: name) { return cached }
        let parts = computeParts(of: name)
        cache.store(parts, for: name)
        return parts
    }

    private func computeParts(of name: String) -> Parts? {
        var trimmed = Substring(name)
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        guard !trimmed.isEmpty else { return nil }
        let labels = trimmed.lowercased().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !labels.contains(where: \.isEmpty) else { return nil }
        let originalLabels = trimmed.split(separator: ".", omittingEmptySubsequences: false).map(String.init)

        // The number of labels in the public suffix: the longest matching rule, exceptions first.
        var suffixLength = 1
        for length in stride(from: labels.count, through: 1, by: -1) {
            let candidate = labels.suffix(length).joined(separator: ".")
            if exceptions.contains(candidate) {
                suffixLength = length - 1
                break
            }
            if rules.contains(candidate) {
                suffixLength = max(suffixLength, length)
                break
            }
            if length >= 2, wildcards.contains(labels.suffix(length - 1).joined(separator: ".")) {
                suffixLength = max(suffixLength, length)
                break
            }
        }
        let suffix = originalLabels.suffix(suffixLength).joined(separator: ".")
        guard labels.count > suffixLength else {
            return Parts(topLevelDomain: suffix, registeredDomain: nil, subdomain: nil)
        }
        let registered = originalLabels.suffix(suffixLength + 1).joined(separator: ".")
        let rest = originalLabels.dropLast(suffixLength + 1)
        return Parts(
            topLevelDomain: suffix,
            registeredDomain: registered,
            subdomain: rest.isEmpty ? nil : rest.joined(separator: ".")
        )
    }
}

/// A bounded memo of ``PublicSuffixList/parts(of:)``, shared by copies of the list.
private final class PartsCache: Sendable {
    private let entries = Mutex<[String: PublicSuffixList.Parts?]>([:])
    private static let limit = 50_000

    func parts(for name: String) -> PublicSuffixList.Parts?? {
        entries.withLock { $0[name] }
    }

    func store(_ parts: PublicSuffixList.Parts?, for name: String) {
        entries.withLock { entries in
            if entries.count >= Self.limit { entries.removeAll(keepingCapacity: true) }
            entries[name] = parts
        }
    }
}
