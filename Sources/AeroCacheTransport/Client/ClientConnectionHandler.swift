import CNghttp2
import NIOCore

/// One client-side HTTP/2 connection: many unary calls multiplexed as streams.
///
/// Calls start on the event loop (``startCall``); nghttp2 frames them, and the handler
/// writes what it has to send once per event-loop tick. Each call's completion runs exactly
/// once, on the event loop: with the response message, or with an ``RPCError``.
final class ClientConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a call hears when it ends: the response message or the error.
    typealias Completion = @Sendable (Result<[UInt8], any Error>) -> Void

    private let authority: OwnedHeader
    /// Sent on every call (the cluster credential on node-to-node connections).
    private let extraHeaders: [OwnedHeader]
    /// How long past a call's deadline to keep waiting for the server's own answer.
    private let deadlineSlack: TimeAmount
    private let peerDescription: String
    private let maxResponseMessageBytes: Int
    /// Told once when this connection stops taking new calls (GOAWAY or close).
    private let onUnusable: @Sendable () -> Void
    private var session: OpaquePointer!
    private var streams: [Int32: ClientStream] = [:]
    private var pathHeaders: [String: OwnedHeader] = [:]
    private var context: ChannelHandlerContext?
    private var isOpen = true
    private var flushScheduled = false
    private var inReadCycle = false

    init(authority: String, maxResponseMessageBytes: Int, extraHeaders: [(name: String, value: String)] = [],
         deadlineSlack: TimeAmount = .zero, onUnusable: @escaping @Sendable () -> Void) {
        self.authority = OwnedHeader(":authority", authority)
        self.extraHeaders = extraHeaders.map { OwnedHeader($0.name, $0.value) }
        self.deadlineSlack = deadlineSlack
        self.peerDescription = authority
        self.maxResponseMessageBytes = maxResponseMessageBytes
        self.onUnusable = onUnusable
        self.session = Self.makeSession(userData: Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        nghttp2_session_del(session)
    }

    /// Whether new calls may start here.
    var isUsable: Bool {
        isOpen && nghttp2_session_check_request_allowed(session) != 0
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: 1 << 20),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, 16 << 20)
        if context.channel.isActive { flush() }
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        inReadCycle = true
        let result = buffer.withUnsafeReadableBytes { bytes in
            nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        if result < 0 {
            failAll(RPCError(.internalError, "protocol error from \(peerDescription): \(String(cString: nghttp2_strerror(Int32(result))))"))
            close()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        failAll(RPCError(.unavailable, "connection to \(peerDescription) closed"))
        onUnusable()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RPCError(.unavailable, "connection to \(peerDescription) failed: \(error)"))
        close()
    }

    private func close() {
        guard isOpen else { return }
        isOpen = false
        onUnusable()
        context?.close(promise: nil)
    }

    private func failAll(_ error: RPCError) {
        let failed = streams
        streams.removeAll()
        for stream in failed.values { stream.complete(.failure(error)) }
    }

    // MARK: Calls

    /// Starts a unary call; `completion` receives the response message or an ``RPCError``
    /// (``CallNotStarted`` when this connection no longer takes calls: nothing was sent).
    func startCall(path: String, payload: [UInt8], timeoutNanoseconds: Int64?, completion: @escaping Completion) {
        guard isUsable else {
            completion(.failure(CallNotStarted(peer: peerDescription)))
            return
        }
        let stream = ClientStream(request: payload, completion: completion,
                                  maxResponseMessageBytes: maxResponseMessageBytes)
        let pathHeader = pathHeaders[path] ?? {
            let header = OwnedHeader(":path", path)
            pathHeaders[path] = header
            return header
        }()
        var fields = [StaticHeader.methodPOST.field, StaticHeader.schemeHTTP.field, pathHeader.field,
                      authority.field, StaticHeader.contentTypeGRPC.field, StaticHeader.te.field,
                      StaticHeader.userAgent.field]
        for header in extraHeaders { fields.append(header.field) }
        var provider = nghttp2_data_provider()
        provider.read_callback = clientReadRequestData
        let streamID: Int32
        if let timeoutNanoseconds {
            var timeout = Array(GRPCTimeout.format(nanoseconds: timeoutNanoseconds).utf8)
            streamID = timeout.withUnsafeMutableBufferPointer { value in
                "grpc-timeout".withCString { name in
                    fields.append(nghttp2_nv(
                        name: UnsafeMutableRawPointer(mutating: name).assumingMemoryBound(to: UInt8.self),
                        value: value.baseAddress!, namelen: 12, valuelen: value.count,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
                    return nghttp2_submit_request(session, nil, &fields, fields.count, &provider, nil)
                }
            }
        } else {
            streamID = nghttp2_submit_request(session, nil, &fields, fields.count, &provider, nil)
        }
        guard streamID > 0 else {
            stream.complete(.failure(RPCError(.unavailable, "cannot start a call to \(peerDescription): \(String(cString: nghttp2_strerror(streamID)))")))
            return
        }
        streams[streamID] = stream
        if let timeoutNanoseconds, let context {
            stream.timer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(timeoutNanoseconds) + deadlineSlack) { [self] in
                self.expire(streamID: streamID)
            }
        }
        scheduleFlush()
    }

    private func expire(streamID: Int32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_CANCEL.rawValue)
        stream.complete(.failure(RPCError(.deadlineExceeded, "deadline exceeded waiting for \(peerDescription)")))
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !inReadCycle, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            self.flushScheduled = false
            self.flush()
        }
    }

    private func flush() {
        guard isOpen, let context, context.channel.isActive else { return }
        var buffer: ByteBuffer?
        while true {
            var chunk: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &chunk)
            if count < 0 {
                failAll(RPCError(.internalError, "nghttp2 send failed: \(String(cString: nghttp2_strerror(Int32(count))))"))
                close()
                return
            }
            guard count > 0, let chunk else { break }
            if buffer == nil { buffer = context.channel.allocator.buffer(capacity: Swift.max(count, 1024)) }
            buffer!.writeBytes(UnsafeRawBufferPointer(start: chunk, count: count))
        }
        if let buffer { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
        if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
            close()
        }
    }

    // MARK: nghttp2 callbacks

    fileprivate func readRequestData(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                                     flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[streamID] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        let written = stream.readRequest(into: buffer, length: length)
        if stream.requestFullySent { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return written
    }

    fileprivate func onHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        streams[streamID]?.answer.receiveHeader(name: name, value: value)
    }

    fileprivate func onDataChunk(streamID: Int32, data: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else { return }
        if !stream.answer.receiveData(data) {
            streams[streamID] = nil
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_CANCEL.rawValue)
            stream.complete(.failure(RPCError(.resourceExhausted, "response from \(peerDescription) is over the limit of \(maxResponseMessageBytes) bytes")))
        }
    }

    fileprivate func onStreamClose(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        let answer = stream.answer
        stream.answer = ClientCallAnswer(maxMessageBytes: 0)  // the answer's bytes move out, not copied
        stream.complete(answer.outcome(resetCode: errorCode, peer: peerDescription).mapError { $0 })
    }

    fileprivate func onGoaway() {
        onUnusable()
    }

    private static func makeSession(userData: UnsafeMutableRawPointer) -> OpaquePointer {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value else { return 0 }
            handler(userData).onHeader(streamID: frame.pointee.hd.stream_id,
                                       name: UnsafeRawBufferPointer(start: name, count: nameLength),
                                       value: UnsafeRawBufferPointer(start: value, count: valueLength))
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            guard let data else { return 0 }
            handler(userData).onDataChunk(streamID: streamID, data: UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            handler(userData).onStreamClose(streamID: streamID, errorCode: errorCode)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            if let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_GOAWAY.rawValue {
                handler(userData).onGoaway()
            }
            return 0
        }
        var session: OpaquePointer?
        let rv = nghttp2_session_client_new(&session, callbacks, userData)
        precondition(rv == 0 && session != nil, "nghttp2_session_client_new failed: \(rv)")
        return session!
    }
}

@inline(__always)
private func handler(_ userData: UnsafeMutableRawPointer?) -> ClientConnectionHandler {
    Unmanaged<ClientConnectionHandler>.fromOpaque(userData!).takeUnretainedValue()
}

private let clientReadRequestData: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return handler(userData).readRequestData(streamID: streamID, into: buffer, length: length, flags: flags)
}

/// A header field owned by one object and freed with it.
final class OwnedHeader {
    let field: nghttp2_nv
    private let storage: UnsafeMutablePointer<UInt8>

    init(_ name: String, _ value: String) {
        let bytes = Array(name.utf8) + Array(value.utf8)
        storage = .allocate(capacity: Swift.max(bytes.count, 1))
        storage.initialize(from: bytes, count: bytes.count)
        let nameCount = name.utf8.count
        field = nghttp2_nv(name: storage, value: storage + nameCount, namelen: nameCount,
                           valuelen: bytes.count - nameCount,
                           flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
    }

    deinit { storage.deallocate() }
}

/// The connection closed or drained before the call could start: nothing was sent, so the
/// call may go out again on a new connection.
struct CallNotStarted: Error {
    let peer: String
}
