import NIOCore

/// Closes a connection that has not sent a whole HTTP/2 start (the 24-byte connection preface
/// and the first frame, its SETTINGS) within ``limit`` of opening: one that never finishes its
/// TLS handshake, or sends part of the preface and stops, would otherwise hold one of the
/// server's connection slots for ever. It sits after the TLS handler (it counts the decrypted
/// bytes), passes every byte on, and removes itself once the start is in.
final class FirstBytesDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    static let limit = TimeAmount.seconds(10)
    private var timer: Scheduled<Void>?
    private var start = ConnectionStart()

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: Self.limit) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let complete = unwrapInboundIn(data).withUnsafeReadableBytes { start.receive($0) }
        context.fireChannelRead(data)
        guard complete else { return }
        timer?.cancel()
        timer = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// How far a connection's start has come: the client's 24-byte preface, then its first frame
/// (a 9-byte header carrying the payload's length, then the payload). The bytes are counted,
/// not checked: nghttp2 checks them.
struct ConnectionStart {
    static let prefaceLength = 24
    static let frameHeaderLength = 9
    private var received = 0
    /// The first frame's length field, byte by byte.
    private var length = 0

    /// Counts `bytes`; true once the preface and the whole first frame have arrived.
    mutating func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes {
            let position = received
            received += 1
            if position >= Self.prefaceLength && position < Self.prefaceLength + 3 {
                length = length << 8 | Int(byte)
            }
            if received >= Self.prefaceLength + Self.frameHeaderLength + length { return true }
        }
        return false
    }
}
