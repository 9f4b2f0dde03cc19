import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Certificate pinning by SHA-256 fingerprint, as Elasticsearch's clients take `ssl_assert_fingerprint`.
///
/// AsyncHTTPClient offers no verification callback, so the pin is applied in two steps: a handshake of its own
/// (SwiftNIO SSL with a custom verification callback) finds the certificate of the node's chain whose fingerprint is
/// the pinned one, and that certificate then becomes the only trust anchor of the client's requests, which verify
/// the chain against it as usual. A chain that does not contain the pinned certificate fails at both steps. Written
/// here because neither AsyncHTTPClient nor SwiftNIO SSL offers pinning as a configuration.
enum CertificatePin {
    /// Lowercase hex without separators.
    static func normalize(_ fingerprint: String) -> String {
        fingerprint.lowercased().filter { $0.isHexDigit }
    }

    static func fingerprint(_ certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes() else { return nil }
        return SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    /// Connects to `node`, and returns the certificate of its chain with the `fingerprint`.
    static func fetch(node: String, fingerprint: String) async throws(ElasticError) -> NIOSSLCertificate {
        let wanted = normalize(fingerprint)
        guard wanted.count == 64 else {
            throw ElasticError(.untrusted, message: "the fingerprint \(fingerprint) is not a SHA-256 (64 hex digits)")
        }
        guard let components = URLComponents(string: node), let host = components.host else {
            throw ElasticError(.unreachable, message: "\(node) is not a URL")
        }
        let port = components.port ?? 443
        let found = NIOLockedValueBox<NIOSSLCertificate?>(nil)
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let context = try NIOSSLContext(configuration: configuration)
            let hostname = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
            let handshake = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(
                            context: context,
                            serverHostname: hostname,
                            customVerificationCallback: { certificates, promise in
                                let match = certificates.first { Self.fingerprint($0) == wanted }
                                found.withLockedValue { $0 = match }
                                promise.succeed(match == nil ? .failed : .certificateVerified)
                            }
                        )
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: handshake))
                    }
                }
                .connect(host: host, port: port).get()
            defer { channel.close(promise: nil) }
            try await handshake.futureResult.get()
        } catch {
            if found.withLockedValue({ $0 }) == nil {
                throw ElasticError(
                    .untrusted,
                    message: "\(node) presented no certificate with the SHA-256 fingerprint \(fingerprint): \(error)"
                )
            }
        }
        guard let certificate = found.withLockedValue({ $0 }) else {
            throw ElasticError(
                .untrusted,
                message: "\(node) presented no certificate with the fingerprint \(fingerprint)"
            )
        }
        return certificate
    }

    /// Completes a promise when the TLS handshake ends, either way.
    private final class HandshakeWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<Void>

        init(promise: EventLoopPromise<Void>) { self.promise = promise }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent { promise.succeed(()) }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
            context.fireChannelInactive()
        }
    }
}
