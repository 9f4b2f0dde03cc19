import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import QuarryCore

/// Guards one HTTP/1 connection of the Elasticsearch API against clients that would otherwise hold it, or get an
/// empty answer:
/// - a request's head must arrive within `headerTimeout` of its first byte, so that clients sending headers a byte
///   at a time (or stopping half way) cannot hold connections and file descriptors forever (Hummingbird's idle
///   timeout closes connections that send nothing at all);
/// - a request the HTTP parser refuses (an unknown method, a byte that may not appear in a path, a header past the
///   size limit) is answered with Elasticsearch's JSON error shape before the connection closes, instead of an empty
///   400.
///
/// Written here because neither Hummingbird nor NIO has a request-head timeout. It sits after HTTP decoding and
/// adds a small companion handler before decoding that reports when bytes arrive.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests: nothing received of the next one.
        case idle
        /// Bytes of a request head have arrived; the head is not complete.
        case readingHead
        /// The head arrived; the request is being read or answered.
        case inRequest
    }

    private let headerTimeout: TimeAmount
    private var state = State.idle
    private var responding = false
    private var timer: Scheduled<Void>?

    init(headerTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The companion sees raw bytes: it must stand before the HTTP decoder.
        try? context.pipeline.syncOperations.addHandler(ByteWatcher(owner: self), position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    /// Called by the companion, on the event loop, when bytes arrive.
    fileprivate func bytesArrived(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .readingHead
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: headerTimeout) {
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            timer?.cancel()
            timer = nil
            state = .inRequest
        case .body, .end:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: responding = true
        case .body: break
        case .end:
            responding = false
            state = .idle
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        timer?.cancel()
        // A response already under way cannot be replaced: closing is all that is left.
        guard !responding else {
            context.close(promise: nil)
            return
        }
        let (status, body) = Self.response(for: parserError)
        var head = HTTPResponse(status: .init(code: status))
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.connection] = "close"
        head.headerFields[HTTPField.Name("X-Elastic-Product")!] = "Elasticsearch"
        let bytes = body.serializedBytes()
        head.headerFields[.contentLength] = String(bytes.count)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: bytes))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Elasticsearch's status and error body for a request the parser refused.
    static func response(for error: HTTPParserError) -> (Int, JSON) {
        func failure(_ type: String, _ reason: String, status: Int) -> (Int, JSON) {
            let cause: JSON = ["type": .string(type), "reason": .string(reason)]
            return (
                status,
                [
                    "error": ["root_cause": [cause], "type": .string(type), "reason": .string(reason)],
                    "status": .int(Int64(status)),
                ]
            )
        }
        switch error {
        case .invalidMethod:
            return (405, ["error": "Incorrect HTTP method: the method is not one the server knows", "status": 405])
        case .headerOverflow:
            return failure("too_long_http_header_exception", "HTTP header is larger than the limit", status: 431)
        case .invalidURL, .invalidPath:
            return failure(
                "illegal_argument_exception",
                "the request line holds bytes a URI may not contain",
                status: 400
            )
        default:
            return failure("illegal_argument_exception", "malformed HTTP request: \(error)", status: 400)
        }
    }
}

/// Reports to its ``ConnectionGuard`` that bytes arrived; passes them on unchanged.
private final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Both handlers live on the channel's event loop.
    private weak var owner: ConnectionGuard?

    init(owner: ConnectionGuard) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.bytesArrived(context: context)
        context.fireChannelRead(data)
    }
}
