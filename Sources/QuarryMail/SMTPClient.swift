import Foundation
public import NIOCore
import NIOPosix
import NIOSSL

/// How to reach an SMTP server.
public struct SMTPConfiguration: Sendable {
    public enum Security: String, Sendable {
        /// Plain text (a relay on loopback).
        case none
        /// Plain text first, then `STARTTLS` before anything else is said; refused if the server does not offer it.
        case startTLS = "starttls"
        /// TLS from the first byte (port 465).
        case tls
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// A PEM file of certificate authorities trusted besides the system's.
    public var trustedCertificatesFile: String?
    /// Verify the server's certificate and name (default); off only for a test relay.
    public var verifyCertificate: Bool
    /// The name this client gives in `EHLO`.
    public var clientName: String
    public var timeout: TimeAmount

    public init(
        host: String,
        port: Int,
        security: Security = .startTLS,
        username: String? = nil,
        password: String? = nil,
        trustedCertificatesFile: String? = nil,
        verifyCertificate: Bool = true,
        clientName: String = "quarry.localdomain",
        timeout: TimeAmount = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.trustedCertificatesFile = trustedCertificatesFile
        self.verifyCertificate = verifyCertificate
        self.clientName = clientName
        self.timeout = timeout
    }
}

/// An SMTP failure: what was being done and what the server said. Never contains the password.
public struct SMTPError: Error, CustomStringConvertible, Sendable {
    /// The server's reply code, when it replied; 4xx means trying again later may work.
    public var code: Int?
    public var description: String
    /// A temporary failure: a 4xx reply, or the connection could not be made or was lost.
    public var isTransient: Bool { code.map { (400..<500).contains($0) } ?? true }

    init(_ description: String, code: Int? = nil) {
        self.description = description
        self.code = code
    }
}

/// Sends mail over SMTP (RFC 5321) with STARTTLS (RFC 3207) or implicit TLS, and AUTH PLAIN or LOGIN (RFC 4954).
///
/// Written on SwiftNIO and NIOSSL because no SMTP package is in the project's package set.
public enum SMTPClient {
    /// Delivers `message` to every recipient; throws ``SMTPError`` on the first reply that refuses it.
    public static func send(_ message: MailMessage, using configuration: SMTPConfiguration) async throws {
        let tls = try makeTLSContext(configuration)
        let handler = NIOLoopBoundBox<SMTPResponseHandler?>.makeEmptyBox(
            eventLoop: MultiThreadedEventLoopGroup.singleton.next()
        )
        let eventLoop = handler.eventLoop
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(configuration.timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if configuration.security == .tls {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: hostname(configuration.host))
                            )
                        }
                        let responses = SMTPResponseHandler()
                        handler.value = responses
                        try channel.pipeline.syncOperations.addHandler(responses)
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw SMTPError("cannot connect to \(configuration.host):\(configuration.port): \(error)")
        }
        defer { channel.close(promise: nil) }
        let session = SMTPSession(channel: channel, handler: handler, timeout: configuration.timeout)
        try await session.expect(nil, 220, "greeting")
        var capabilities = try await session.expect("EHLO \(configuration.clientName)", 250, "EHLO").lines
        if configuration.security == .startTLS {
            guard capabilities.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                throw SMTPError(
                    "\(configuration.host) does not offer STARTTLS (use security: none only for a trusted relay)"
                )
            }
            try await session.expect("STARTTLS", 220, "STARTTLS")
            do {
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: tls, serverHostname: hostname(configuration.host)),
                        position: .first
                    )
                }.get()
            } catch {
                throw SMTPError("TLS with \(configuration.host) failed: \(error)")
            }
            capabilities = try await session.expect("EHLO \(configuration.clientName)", 250, "EHLO after STARTTLS")
                .lines
        }
        if let username = configuration.username, let password = configuration.password {
            let mechanisms =
                capabilities.first { $0.uppercased().hasPrefix("AUTH") }?.uppercased()
                .split(separator: " ").dropFirst().map(String.init) ?? []
            if mechanisms.contains("PLAIN") || !mechanisms.contains("LOGIN") {
                let token = Data("\u{0}\(username)\u{0}\(password)".utf8).base64EncodedString()
                try await session.expect("AUTH PLAIN \(token)", 235, "AUTH PLAIN", redacted: "AUTH PLAIN")
            } else {
                try await session.expect("AUTH LOGIN", 334, "AUTH LOGIN")
                try await session.expect(
                    Data(username.utf8).base64EncodedString(),
                    334,
                    "AUTH LOGIN",
                    redacted: "username"
                )
                try await session.expect(
                    Data(password.utf8).base64EncodedString(),
                    235,
                    "AUTH LOGIN",
                    redacted: "password"
                )
            }
        }
        let utf8 = capabilities.contains { $0.uppercased().hasPrefix("SMTPUTF8") }
        let sender = MailMessage.address(in: message.from)
        try await session.expect(
            "MAIL FROM:<\(sender)>" + (utf8 && !sender.allSatisfy(\.isASCII) ? " SMTPUTF8" : ""),
            250,
            "MAIL FROM"
        )
        for recipient in message.recipients {
            try await session.expect(
                "RCPT TO:<\(MailMessage.address(in: recipient))>",
                [250, 251],
                "RCPT TO \(MailMessage.address(in: recipient))"
            )
        }
        try await session.expect("DATA", 354, "DATA")
        let stuffed = message.rendered().split(separator: "\r\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n")
        try await session.expect(stuffed + ".", 250, "message data", redacted: "message")
        _ = try? await session.expect("QUIT", 221, "QUIT")
    }

    private static func makeTLSContext(_ configuration: SMTPConfiguration) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let file = configuration.trustedCertificatesFile { tls.additionalTrustRoots = [.file(file)] }
        if !configuration.verifyCertificate { tls.certificateVerification = .none }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw SMTPError("cannot set up TLS: \(error)")
        }
    }

    /// SNI takes names, not addresses.
    private static func hostname(_ host: String) -> String? {
        host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : host
    }
}

/// A reply: its code and its text lines.
struct SMTPResponse: Sendable {
    var code: Int
    var lines: [String]
}

/// Commands one at a time, each answered by one reply.
struct SMTPSession {
    var channel: any Channel
    var handler: NIOLoopBoundBox<SMTPResponseHandler?>
    var timeout: TimeAmount

    @discardableResult
    func expect(_ command: String?, _ code: Int, _ step: String, redacted: String? = nil) async throws -> SMTPResponse {
        try await expect(command, [code], step, redacted: redacted)
    }

    @discardableResult
    func expect(
        _ command: String?,
        _ codes: [Int],
        _ step: String,
        redacted: String? = nil
    ) async throws -> SMTPResponse {
        let handler = self.handler
        let channel = self.channel
        let future = channel.eventLoop.flatSubmit { () -> EventLoopFuture<SMTPResponse> in
            let promise = channel.eventLoop.makePromise(of: SMTPResponse.self)
            guard let responses = handler.value else {
                promise.fail(SMTPError("the connection is not set up"))
                return promise.futureResult
            }
            responses.wait(promise)
            if let command {
                channel.writeAndFlush(ByteBuffer(string: command + "\r\n"), promise: nil)
            }
            return promise.futureResult
        }
        let timeout = channel.eventLoop.scheduleTask(in: self.timeout) {
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        let response: SMTPResponse
        do {
            response = try await future.get()
        } catch let error as SMTPError {
            throw SMTPError("\(step): \(error.description)", code: error.code)
        } catch {
            throw SMTPError("\(step): \(error)")
        }
        guard codes.contains(response.code) else {
            throw SMTPError(
                "\(step) refused: \(response.code) \(response.lines.joined(separator: " "))",
                code: response.code
            )
        }
        return response
    }
}

/// Splits the server's bytes into replies (multi-line replies joined) and hands each to the oldest waiting command.
final class SMTPResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<SMTPResponse>>()
    /// Replies that arrived before anyone asked for them (the greeting races the first `expect`).
    private var unclaimed = CircularBuffer<SMTPResponse>()
    private var failure: SMTPError?
    private var partial: [UInt8] = []

    /// Hands `promise` the next reply: one already received, or the next to arrive.
    func wait(_ promise: EventLoopPromise<SMTPResponse>) {
        if let response = unclaimed.popFirst() {
            promise.succeed(response)
        } else if let failure {
            promise.fail(failure)
        } else {
            waiting.append(promise)
        }
    }
    private var lines: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        partial += buffer.readableBytesView
        while let end = partial.firstRange(of: [13, 10]) {
            let line = String(decoding: partial[..<end.lowerBound], as: UTF8.self)
            partial.removeSubrange(..<end.upperBound)
            guard line.utf8.count >= 3, let code = Int(line.prefix(3)) else {
                failAll(SMTPError("the server sent a line that is not an SMTP reply: \(line.prefix(80))"))
                context.close(promise: nil)
                return
            }
            lines.append(String(line.dropFirst(4)))
            let isLast = line.utf8.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " "
            if isLast {
                let response = SMTPResponse(code: code, lines: lines)
                lines = []
                if let promise = waiting.popFirst() {
                    promise.succeed(response)
                } else {
                    unclaimed.append(response)
                }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(SMTPError("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(SMTPError("the server closed the connection"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: SMTPError) {
        if failure == nil { failure = error }
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}
