import NIOCore

/// Closes a connection that has sent no HTTP/2 bytes within ``limit`` of opening: one that
/// never finishes its TLS handshake, or never sends the connection preface, would otherwise
/// hold one of the server's connection slots for ever. It sits after the TLS handler (it sees
/// the decrypted bytes) and removes itself at the first of them.
final class FirstBytesDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    static let limit = TimeAmount.seconds(10)
    private var timer: Scheduled<Void>?

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: Self.limit) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
