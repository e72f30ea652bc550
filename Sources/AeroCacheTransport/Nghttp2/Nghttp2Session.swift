import CNghttp2
import NIOCore

/// What a connection handler hears from its ``Nghttp2Session``, on the event loop.
protocol Nghttp2SessionDelegate: AnyObject {
    /// A peer's request starts (servers only).
    func sessionBeganRequest(streamID: Int32)
    func sessionReceivedHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    func sessionReceivedFrame(streamID: Int32, _ frame: Nghttp2Session.Frame, endStream: Bool)
    func sessionReceivedData(streamID: Int32, _ data: UnsafeRawBufferPointer)
    /// The stream closed; `errorCode` 0 when it ended normally.
    func sessionClosedStream(streamID: Int32, errorCode: UInt32)
    /// nghttp2 asks for up to `length` bytes of a body this side sends (a request, an answer).
    func sessionReadsBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                          flags: UnsafeMutablePointer<UInt32>) -> Int
}

/// One nghttp2 session, client or server, and the byte pumping around it that both share:
/// its callbacks turned into ``Nghttp2SessionDelegate`` calls, bytes in (``receive(_:)``),
/// bytes out (``drain(into:whileWritable:)``), and one flush per read cycle or loop turn.
final class Nghttp2Session {
    enum Role { case client, server }

    /// The frames a handler acts on.
    enum Frame {
        /// HEADERS; `isRequest`: the first HEADERS of a peer's request.
        case headers(isRequest: Bool)
        case data
        case goaway
        /// The peer's answer to our PING.
        case pingAck
        case other
    }

    /// What draining the session's output came to.
    enum Drained {
        case open
        /// Neither side has anything more to say: the connection may close.
        case finished
        case failed(String)
    }

    private(set) var raw: OpaquePointer!
    /// The handler that owns this session (and so outlives it).
    unowned(unsafe) var delegate: (any Nghttp2SessionDelegate)?
    /// Whether bytes read are being fed to nghttp2 (its callbacks may run): no write now.
    private(set) var inReadCycle = false
    /// Whether ``drain(into:whileWritable:)`` runs (nghttp2's send callbacks may run): no write now.
    private(set) var isDraining = false
    /// Whether nghttp2 may be running callbacks now, so that nothing may write.
    var isBusy: Bool { inReadCycle || isDraining }
    private var flushScheduled = false

    /// `manualWindowUpdates`: the delegate gives request windows back itself
    /// (`nghttp2_session_consume*`); otherwise nghttp2 does as bytes arrive.
    init(role: Role, manualWindowUpdates: Bool = false) {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(on: callbacks)
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        if manualWindowUpdates { nghttp2_option_set_no_auto_window_update(option, 1) }
        let userData = Unmanaged.passUnretained(self).toOpaque()
        var session: OpaquePointer?
        let rv = switch role {
        case .client: nghttp2_session_client_new2(&session, callbacks, userData, option)
        case .server: nghttp2_session_server_new2(&session, callbacks, userData, option)
        }
        precondition(rv == 0 && session != nil, "nghttp2 session creation failed: \(rv)")
        raw = session
    }

    deinit { nghttp2_session_del(raw) }

    /// Queues this side's SETTINGS and sets its connection-level receive window.
    func submitSettings(_ settings: [(id: nghttp2_settings_id, value: UInt32)], connectionWindow: Int32) {
        var entries = settings.map { nghttp2_settings_entry(settings_id: Int32($0.id.rawValue), value: $0.value) }
        nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, connectionWindow)
    }

    /// Feeds bytes read from the socket (callbacks run meanwhile); nil, or why the connection
    /// must close. A read cycle lasts until ``endReadCycle()``: flushes wait for its end.
    func receive(_ buffer: ByteBuffer) -> String? {
        inReadCycle = true
        let result = buffer.withUnsafeReadableBytes { bytes in
            nghttp2_session_mem_recv(raw, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        return result < 0 ? String(cString: nghttp2_strerror(Int32(result))) : nil
    }

    func endReadCycle() {
        inReadCycle = false
    }

    /// Moves what nghttp2 has queued into the channel and flushes it: all of it, or, with
    /// `whileWritable`, only while the channel takes more (the rest waits in nghttp2), in
    /// writes of at most ``writeChunkBytes``.
    func drain(into context: ChannelHandlerContext, whileWritable: Bool) -> Drained {
        isDraining = true
        defer { isDraining = false }
        var buffer: ByteBuffer?
        var wrote = false
        while !whileWritable || context.channel.isWritable {
            var chunk: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(raw, &chunk)
            if count < 0 { return .failed(String(cString: nghttp2_strerror(Int32(count)))) }
            guard count > 0, let chunk else { break }
            if buffer == nil { buffer = context.channel.allocator.buffer(capacity: Swift.max(count, 1024)) }
            buffer!.writeBytes(UnsafeRawBufferPointer(start: chunk, count: count))
            if whileWritable && buffer!.readableBytes >= Self.writeChunkBytes {
                context.write(NIOAny(buffer!), promise: nil)
                buffer = nil
                wrote = true
            }
        }
        if let buffer {
            context.write(NIOAny(buffer), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        return nghttp2_session_want_read(raw) == 0 && nghttp2_session_want_write(raw) == 0 ? .finished : .open
    }

    /// Bytes gathered from nghttp2 before they are handed to the socket (which then says
    /// whether it takes more).
    static let writeChunkBytes = 64 * 1024

    /// Whether the caller should schedule a flush for when the current event-loop task is
    /// done (and call ``flushRan()`` in it): not while a read cycle is under way (its end
    /// flushes) nor when one is scheduled already, so what completes together goes out in
    /// one write. (The caller schedules it, so that nothing is allocated when it need not.)
    func claimFlush() -> Bool {
        guard !inReadCycle, !flushScheduled else { return false }
        flushScheduled = true
        return true
    }

    func flushRan() {
        flushScheduled = false
    }

    // MARK: Callbacks

    private static func install(on callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
            sessionDelegate(userData)?.sessionBeganRequest(streamID: frame.pointee.hd.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value else { return 0 }
            sessionDelegate(userData)?.sessionReceivedHeader(streamID: frame.pointee.hd.stream_id,
                                                      name: UnsafeRawBufferPointer(start: name, count: nameLength),
                                                      value: UnsafeRawBufferPointer(start: value, count: valueLength))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            let kind: Frame = switch UInt32(frame.pointee.hd.type) {
            case NGHTTP2_HEADERS.rawValue: .headers(isRequest: frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST)
            case NGHTTP2_DATA.rawValue: .data
            case NGHTTP2_GOAWAY.rawValue: .goaway
            case NGHTTP2_PING.rawValue where frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0: .pingAck
            default: .other
            }
            let endStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            sessionDelegate(userData)?.sessionReceivedFrame(streamID: frame.pointee.hd.stream_id, kind, endStream: endStream)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            guard let data else { return 0 }
            sessionDelegate(userData)?.sessionReceivedData(streamID: streamID, UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            sessionDelegate(userData)?.sessionClosedStream(streamID: streamID, errorCode: errorCode)
            return 0
        }
    }

    /// The body reader to submit with a request or an answer (``Nghttp2SessionDelegate/sessionReadsBody``).
    static var bodyProvider: nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.read_callback = readBody
        return provider
    }
}

@inline(__always)
private func sessionDelegate(_ userData: UnsafeMutableRawPointer?) -> (any Nghttp2SessionDelegate)? {
    Unmanaged<Nghttp2Session>.fromOpaque(userData!).takeUnretainedValue().delegate
}

private let readBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
    guard let buffer, let flags, let delegate = sessionDelegate(userData) else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    return delegate.sessionReadsBody(streamID: streamID, into: buffer, length: length, flags: flags)
}
