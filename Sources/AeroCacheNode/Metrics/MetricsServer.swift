import NIOCore
import NIOHTTP1
import NIOPosix
import AeroCacheTransport
#if canImport(Glibc)
import Glibc
#endif

/// Serves Prometheus text at `GET /metrics` over HTTP/1.1.
struct MetricsServer: Sendable {
    let host: String
    let port: Int
    /// Renders the current metrics (called per scrape, off the hot path).
    let render: @Sendable () -> [UInt8]

    /// Listens on `host:port`; a failure is a ``ListenError`` that names the address and the reason.
    func bind(on group: any EventLoopGroup) async throws -> any Channel {
        do {
            return try await listen(on: group)
        } catch {
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw ListenError(message: "--metrics-listen: cannot listen on \(host):\(port): \(reason)")
        }
    }

    private func listen(on group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(render: render))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let render: @Sendable () -> [UInt8]
        private var path = ""

        init(render: @escaping @Sendable () -> [UInt8]) { self.render = render }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.method == .GET ? head.uri : ""
            case .body:
                break
            case .end:
                let found = path == "/metrics" || path.hasPrefix("/metrics?")
                let body = found ? render() : Array("not found: GET /metrics\n".utf8)
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
                headers.add(name: "content-length", value: String(body.count))
                let head = HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers)
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
