import Foundation
import QuarryCore

/// Removes secret values from what the engine stores or logs: the values themselves in any letter case, and the
/// forms an agent or a template commonly turns them into — base64 (standard and URL-safe, at any alignment inside a
/// longer encoded text such as a Basic `Authorization` header), hex, percent-encoding and JSON string escaping.
struct Redaction: Sendable {
    static let marker = "[redacted]"

    /// What is replaced, longest first so that a longer form is never half replaced by a shorter one.
    let patterns: [String]

    init(secrets: [String]) {
        var patterns = Set<String>()
        for secret in secrets where secret.count >= 4 {
            patterns.insert(secret)
            let bytes = Array(secret.utf8)
            patterns.insert(bytes.map { String(format: "%02x", $0) }.joined())
            if let escaped = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                patterns.insert(escaped)
            }
            let json = JSON.string(secret).serialized()
            patterns.insert(String(json.dropFirst().dropLast()))
            for encoded in Self.base64Forms(bytes) where encoded.count >= 6 {
                patterns.insert(encoded)
                patterns.insert(
                    encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                )
            }
        }
        self.patterns = patterns.sorted { $0.count > $1.count }
    }

    /// The base64 characters that encode `bytes` whatever bytes come before and after them: for each of the three
    /// alignments, the characters that depend on `bytes` alone.
    static func base64Forms(_ bytes: [UInt8]) -> [String] {
        (0..<3).map { offset in
            let encoded = Data(Array(repeating: 0, count: offset) + bytes).base64EncodedString()
            let characters = Array(encoded.replacingOccurrences(of: "=", with: ""))
            // Leading characters mix in the filler bytes; trailing ones may mix in whatever follows.
            let lead = [0, 2, 3][offset]
            let total = offset + bytes.count
            let trail = total % 3 == 0 ? 0 : total % 3 + 1
            guard characters.count > lead + trail else { return "" }
            return String(characters[lead..<(characters.count - trail)])
        }
    }

    func redact(_ text: String) -> String {
        var result = text
        for pattern in patterns where result.range(of: pattern, options: .caseInsensitive) != nil {
            result = result.replacingOccurrences(of: pattern, with: Self.marker, options: .caseInsensitive)
        }
        return result
    }

    func redact(_ value: JSON) -> JSON {
        guard !patterns.isEmpty else { return value }
        switch value {
        case .string(let text): return .string(redact(text))
        case .array(let items): return .array(items.map(redact))
        case .object(let object):
            var result = JSONObject()
            for (key, member) in object { result[key] = redact(member) }
            return .object(result)
        default: return value
        }
    }
}
