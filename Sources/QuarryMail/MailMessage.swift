public import Foundation

/// An email as Quarry sends it: an HTML body with a plain-text alternative (`multipart/alternative`), UTF-8
/// throughout, non-ASCII header text in RFC 2047 encoded words, bodies in base64 so that any line length and any
/// character survive every relay.
public struct MailMessage: Sendable {
    public var from: String
    public var recipients: [String]
    public var subject: String
    public var text: String
    public var html: String?
    public var replyTo: String?

    public init(from: String, recipients: [String], subject: String, text: String, html: String? = nil) {
        self.from = from
        self.recipients = recipients
        self.subject = subject
        self.text = text
        self.html = html
    }

    /// The message in RFC 5322 form with CRLF line ends, before SMTP's dot-stuffing.
    public func rendered(date: Date = Date(), messageID: String? = nil, boundary: String? = nil) -> String {
        let domain = Self.address(in: from).split(separator: "@").last.map(String.init) ?? "quarry.local"
        let identifier = messageID ?? "<\(UUID().uuidString.lowercased())@\(domain)>"
        var lines = [
            "From: \(Self.encodeAddress(from))",
            "To: \(recipients.map(Self.encodeAddress).joined(separator: ", "))",
            "Subject: \(Self.encodeWord(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: \(identifier)",
            "MIME-Version: 1.0",
        ]
        if let replyTo { lines.append("Reply-To: \(Self.encodeAddress(replyTo))") }
        if let html {
            let separator = boundary ?? "quarry-\(UUID().uuidString.lowercased())"
            lines.append("Content-Type: multipart/alternative; boundary=\"\(separator)\"")
            lines.append("")
            lines.append("--\(separator)")
            lines += Self.part(type: "text/plain", text)
            lines.append("--\(separator)")
            lines += Self.part(type: "text/html", html)
            lines.append("--\(separator)--")
        } else {
            lines += Self.part(type: "text/plain", text)
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func part(type: String, _ body: String) -> [String] {
        var lines = ["Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", ""]
        let encoded = Data(body.utf8).base64EncodedString()
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines
    }

    /// The bare address of `Name <user@example.com>` or `user@example.com`.
    public static func address(in text: String) -> String {
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            return String(text[text.index(after: open)..<close]).trimmingCharacters(in: .whitespaces)
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// `Zoë <z@example.com>` with the display name as an encoded word when it is not ASCII.
    static func encodeAddress(_ text: String) -> String {
        let address = address(in: text)
        guard let open = text.lastIndex(of: "<") else { return address }
        let name = text[..<open].trimmingCharacters(in: .whitespaces).trimmingCharacters(
            in: CharacterSet(charactersIn: "\"")
        )
        if name.isEmpty { return "<\(address)>" }
        if name.allSatisfy({ $0.isASCII }) {
            return "\"\(name.replacingOccurrences(of: "\"", with: ""))\" <\(address)>"
        }
        return "\(encodeWord(name)) <\(address)>"
    }

    /// RFC 2047: ASCII text as it is; anything else as `=?UTF-8?B?…?=` words of at most 75 characters, split on
    /// character boundaries.
    static func encodeWord(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if flat.allSatisfy({ $0.isASCII }) { return flat }
        var words: [String] = []
        var chunk = ""
        for character in flat {
            if (chunk + String(character)).utf8.count > 45 {
                words.append("=?UTF-8?B?\(Data(chunk.utf8).base64EncodedString())?=")
                chunk = ""
            }
            chunk.append(character)
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Data(chunk.utf8).base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss +0000"
        return formatter.string(from: date)
    }
}
