import Foundation
import QuarryMail
import QuarryTesting
import Testing

/// The SMTP client against aiosmtpd on loopback (Debian's python3-aiosmtpd, `Tests/python/smtp_sink.py`):
/// STARTTLS with AUTH, a refused password, a server that offers no STARTTLS.
@Suite(.serialized, .enabled(if: LoopbackServers.smtpMissing == nil, "\(LoopbackServers.smtpMissing ?? "")"), .mayBlock)
struct SMTPClientTests {
    @Test(.timeLimit(.minutes(8))) func aMessageArrivesOverSTARTTLSWithAuthentication() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = try await LoopbackServers.certificate(in: directory)
            let sink = try await LoopbackServers.SMTPSink(
                directory: directory,
                arguments: ["--tls", certificate.0, certificate.1, "--auth", "hunter:right-password"]
            )
            var message = MailMessage(
                from: "Zoë Hunter <hunts@quarry.test>",
                recipients: ["soc@quarry.test", "ir@quarry.test"],
                subject: "Grüße: the hunt found 3 hosts",
                text: "web-1\nweb-2\n.\ndb-1",
                html: "<p>3 hosts</p>"
            )
            message.replyTo = "soc@quarry.test"
            try await SMTPClient.send(
                message,
                using: SMTPConfiguration(
                    host: "localhost",
                    port: sink.port,
                    security: .startTLS,
                    username: "hunter",
                    password: "right-password",
                    trustedCertificatesFile: certificate.0
                )
            )
            let received = try sink.messages()
            #expect(received.count == 1)
            let mail = try #require(received.first)
            #expect(mail["subject"] as? String == "Grüße: the hunt found 3 hosts")
            #expect((mail["rcpt_tos"] as? [String])?.sorted() == ["ir@quarry.test", "soc@quarry.test"])
            // A line holding only a dot survives the transfer (dot-stuffing).
            #expect((mail["text"] as? String)?.contains("web-2\n.\ndb-1") == true, "\(mail)")
        }
    }

    @Test(.timeLimit(.minutes(8))) func refusalsNameTheStepAndTheReplyButNeverThePassword() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = try await LoopbackServers.certificate(in: directory)
            let sink = try await LoopbackServers.SMTPSink(
                directory: directory.appendingPathComponent("auth"),
                arguments: ["--tls", certificate.0, certificate.1, "--auth", "hunter:right-password"]
            )
            let message = MailMessage(
                from: "hunts@quarry.test",
                recipients: ["soc@quarry.test"],
                subject: "x",
                text: "x"
            )
            do {
                try await SMTPClient.send(
                    message,
                    using: SMTPConfiguration(
                        host: "localhost",
                        port: sink.port,
                        username: "hunter",
                        password: "Wr0ng-Pa55word",
                        trustedCertificatesFile: certificate.0
                    )
                )
                Issue.record("a wrong password was accepted")
            } catch let error as SMTPError {
                #expect(error.code == 535)
                #expect(!error.isTransient)
                #expect(!"\(error)".contains("Wr0ng-Pa55word"))
            }

            let plain = try await LoopbackServers.SMTPSink(
                directory: directory.appendingPathComponent("plain"),
                arguments: []
            )
            await #expect(throws: SMTPError.self) {
                try await SMTPClient.send(message, using: SMTPConfiguration(host: "localhost", port: plain.port))
            }
            #expect(try plain.messages().isEmpty)
        }
    }
}
