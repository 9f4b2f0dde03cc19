import Foundation
import QuarryCore
import QuarryMail
public import QuarryStories

/// `email` — sends the report: an HTML `body` with a plain-text alternative (given as `text_body`, or made from
/// the HTML), to `recipients` (a list, or comma-separated), over SMTP with STARTTLS (default), implicit TLS or,
/// for a relay on loopback, none. Emits `{sent, recipients, subject}`; in a dry run nothing is sent and the
/// event says `dry_run: true` and holds the whole message it would have sent (`message`: from, recipients,
/// reply-to, subject, text and HTML bodies, and the SMTP server, user but never password). A 4xx reply or a lost connection is retried with the agent's backoff.
public struct EmailAgent: StoryAgent {
    public static let type = "email"
    public static let summary = "Sends an HTML email with a plain-text alternative over SMTP."
    public static let destinationOptions = ["smtp_host", "recipients"]
    public static let options: [OptionSpec] = [
        OptionSpec("recipients", .list, required: true, "Addresses: a list, or comma-separated."),
        OptionSpec("from", .string, required: true, "The sender (Name <address> or address)."),
        OptionSpec("subject", .string, required: true, "The subject."),
        OptionSpec("body", .string, required: true, "The HTML body."),
        OptionSpec("text_body", .string, "The plain-text alternative (default: the HTML's text)."),
        OptionSpec("reply_to", .string, "A Reply-To address."),
        OptionSpec(
            "allowed_recipients",
            .list,
            "When given, the only recipients allowed: addresses, or @domain for a whole domain (for recipients that "
                + "come from a webhook's input)."
        ),
        OptionSpec("smtp_host", .string, required: true, "The SMTP server."),
        OptionSpec("smtp_port", .integer, "Its port (default 587; 465 for tls)."),
        OptionSpec(
            "smtp_security",
            .string,
            allowed: ["starttls", "tls", "none"],
            "starttls (default), tls, or none."
        ),
        OptionSpec("smtp_username", .string, "User for AUTH (PLAIN or LOGIN)."),
        OptionSpec("smtp_password", .string, "Password for AUTH: use {% credential name %}."),
        OptionSpec("verify_certificate", .boolean, "Verify the server certificate (default true)."),
    ]

    public init(definition: AgentDefinition) throws(StoryProblem) {
        if let password = definition.options["smtp_password"]?.stringValue, !password.contains("{") {
            throw StoryProblem(
                definition.location,
                option: "options.smtp_password",
                "a password written in the story would be in git: use {% credential name %}"
            )
        }
    }

    public func receive(_ input: AgentInput, context: AgentContext) async throws -> AgentOutput {
        let recipients = input.list("recipients").flatMap {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        .filter { !$0.isEmpty }
        guard !recipients.isEmpty else { throw AgentError.failed("recipients rendered empty") }
        for option in ["from", "smtp_host"] where (input.string(option) ?? "").isEmpty {
            throw AgentError.failed("\(option) rendered empty (a resource or variable it names is missing?)")
        }
        for recipient in recipients where !MailMessage.address(in: recipient).contains("@") {
            throw AgentError.failed("'\(recipient)' is not an email address")
        }
        if input.options["allowed_recipients"] != nil {
            let allowed = input.list("allowed_recipients").map { $0.lowercased() }
            for recipient in recipients {
                let address = MailMessage.address(in: recipient).lowercased()
                let domain = address.split(separator: "@").last.map { "@" + $0 } ?? ""
                guard allowed.contains(address) || allowed.contains(domain) else {
                    throw AgentError.failed(
                        "'\(address)' is not an allowed recipient (allowed: "
                            + "\(allowed.isEmpty ? "none" : allowed.joined(separator: ", ")))"
                    )
                }
            }
        }
        try context.checkDestination(input.string("smtp_host") ?? "")
        let html = input.string("body") ?? ""
        var message = MailMessage(
            from: input.string("from") ?? "",
            recipients: recipients,
            subject: input.string("subject") ?? "",
            text: input.string("text_body") ?? Self.text(fromHTML: html),
            html: html
        )
        message.replyTo = input.string("reply_to")
        let subject = message.subject
        let summary: JSON = ["recipients": .array(recipients.map { .string($0) }), "subject": .string(subject)]
        let security =
            SMTPConfiguration.Security(rawValue: input.string("smtp_security")?.lowercased() ?? "starttls") ?? .startTLS
        let port = input.integer("smtp_port") ?? (security == .tls ? 465 : 587)
        let username = input.string("smtp_username").flatMap { $0.isEmpty ? nil : $0 }
        if context.dryRun {
            let wouldSend: JSON = [
                "from": .string(message.from), "recipients": summary["recipients"]!,
                "reply_to": message.replyTo.map { .string($0) } ?? .null, "subject": .string(subject),
                "text": .string(message.text), "html": .string(html),
                "smtp": [
                    "host": .string(input.string("smtp_host") ?? ""), "port": .int(Int64(port)),
                    "security": .string(security.rawValue), "username": username.map { .string($0) } ?? .null,
                ],
            ]
            var output = AgentOutput(events: [
                [
                    "dry_run": true, "sent": false, "recipients": summary["recipients"]!, "subject": .string(subject),
                    "message": wouldSend,
                ]
            ])
            output.skipped.append("email to \(recipients.joined(separator: ", ")) not sent")
            return output
        }
        let configuration = SMTPConfiguration(
            host: input.string("smtp_host") ?? "",
            port: port,
            security: security,
            username: username,
            password: input.string("smtp_password").flatMap { $0.isEmpty ? nil : $0 },
            trustedCertificatesFile: try context.builtIn.trustedCertificatesFile,
            verifyCertificate: input.bool("verify_certificate", default: true)
        )
        do {
            try await SMTPClient.send(message, using: configuration)
        } catch let error as SMTPError {
            let text = "email to \(recipients.joined(separator: ", ")) failed: \(error.description)"
            throw error.isTransient ? AgentError.retryable(text) : AgentError.failed(text)
        }
        return AgentOutput(events: [["sent": true, "recipients": summary["recipients"]!, "subject": .string(subject)]])
    }

    /// The HTML's text: tags dropped, block ends and `<br>` as line breaks, entities decoded, blank runs folded.
    static func text(fromHTML html: String) -> String {
        var text = html.replacingOccurrences(
            of: #"(?is)<(script|style)\b.*?</\1>"#,
            with: "",
            options: .regularExpression
        )
        text = text.replacingOccurrences(
            of: #"(?i)<br\s*/?>|</(p|div|tr|h[1-6]|li|table)>"#,
            with: "\n",
            options: .regularExpression
        )
        text = text.replacingOccurrences(of: #"(?i)</t[dh]>"#, with: "\t", options: .regularExpression)
        text = text.replacingOccurrences(of: #"<[^>]+>"#, with: "", options: .regularExpression)
        for (entity, character) in [
            ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&nbsp;", " "), ("&amp;", "&"),
        ] {
            text = text.replacingOccurrences(of: entity, with: character)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        return lines.split(whereSeparator: \.isEmpty).map { $0.joined(separator: "\n") }.joined(separator: "\n\n")
    }
}
