import AeroCacheRPC
import CNghttp2
import NIOCore

/// One client-side HTTP/2 connection: many unary calls multiplexed as streams.
///
/// Calls start on the event loop (``startCall``); nghttp2 frames them, and the handler
/// writes what it has to send once per event-loop tick, or every ``callsPerWrite`` calls.
/// Each call's completion runs exactly once, on the event loop: with the response message,
/// or with an ``RPCError``.
final class ClientConnectionHandler: ChannelInboundHandler, Nghttp2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a call hears when it ends: the response message or the error.
    typealias Completion = @Sendable (Result<[UInt8], any Error>) -> Void

    private let authority: HeaderField
    /// Sent on every call (the cluster credential on node-to-node connections).
    private let extraHeaders: [HeaderField]
    /// How long past a call's deadline to keep waiting for the server's own answer.
    private let deadlineSlack: TimeAmount
    private let peerDescription: String
    private let maxResponseMessageBytes: Int
    /// Told once when this connection stops taking new calls (GOAWAY or close).
    private let onUnusable: @Sendable () -> Void
    private let session = Nghttp2Session(role: .client)
    private var streams: [Int32: ClientStream] = [:]
    /// Each path's request headers, built once: the `:path` field (kept alive here) and
    /// every field of a request but its `grpc-timeout`.
    private var requestHeaders: [String: (path: HeaderField, fields: [nghttp2_nv])] = [:]
    private var context: ChannelHandlerContext?
    private var isOpen = true
    /// The last `grpc-timeout` sent, formatted (callers mostly send the same one each call).
    private var lastTimeout: (nanoseconds: Int64, text: String)?
    /// Calls started since the last write (``callsPerWrite``).
    private var callsSinceWrite = 0
    /// The timer that fails calls past their deadline, and when it fires (``watch(_:)``).
    private var deadlineSweep: (at: NIODeadline, timer: Scheduled<Void>)?
    /// The PING sent to learn whether the server is alive: when its answer is due, and the
    /// calls that fail as `peerSilent` if it does not come.
    private var ping: (answerDue: NIODeadline, wait: TimeAmount, calls: [Int32])?

    /// The most calls one write carries. Calls started in one event-loop tick go out together,
    /// but not all of them: when every answer arrives in one read, every next call would start
    /// in one tick, and client and server would take turns, each idle while the other works.
    /// Writing every 16 calls lets the server start on the first while the rest are made
    /// (measured: one node, 50 calls in flight, 27,000 → 57,000 Gets/s).
    static let callsPerWrite = 16

    init(authority: String, maxResponseMessageBytes: Int, extraHeaders: [(name: String, value: String)] = [],
         deadlineSlack: TimeAmount = .zero, onUnusable: @escaping @Sendable () -> Void) {
        self.authority = HeaderField(":authority", authority)
        self.extraHeaders = extraHeaders.map { HeaderField($0.name, $0.value) }
        self.deadlineSlack = deadlineSlack
        self.peerDescription = authority
        self.maxResponseMessageBytes = maxResponseMessageBytes
        self.onUnusable = onUnusable
        session.delegate = self
    }

    /// Whether new calls may start here.
    var isUsable: Bool {
        isOpen && nghttp2_session_check_request_allowed(session.raw) != 0
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        session.submitSettings([(NGHTTP2_SETTINGS_ENABLE_PUSH, 0), (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)],
                               connectionWindow: 16 << 20)
        if context.channel.isActive { flush() }
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Any bytes from the server say it is alive, not only the PING's answer (which may
        // queue behind a large answer still arriving).
        if ping != nil { serverIsAlive() }
        if let failure = session.receive(unwrapInboundIn(data)) {
            failAll(RPCError(.internalError, "protocol error from \(peerDescription): \(failure)"))
            close()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.endReadCycle()
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
        deadlineSweep?.timer.cancel()
        deadlineSweep = nil
        ping = nil
        let failed = streams
        streams.removeAll()
        for stream in failed.values { stream.complete(.failure(error)) }
    }

    // MARK: Calls

    /// Starts a unary call; `completion` receives the response message or an ``RPCError``
    /// (``CallNotStarted`` when this connection no longer takes calls: nothing was sent).
    /// With `probeAfterNanoseconds`, a call still unanswered by then asks the server with a
    /// PING whether it is alive, and fails as `peerSilent` (`UNAVAILABLE`) when the PING's
    /// answer does not come within as long again. `writesAtOnce` counts the call as a whole
    /// ``callsPerWrite``: it goes out now (unless nghttp2 is busy, then when it is done).
    /// Returns the stream's id, or nil when the call ended before it went out.
    @discardableResult
    func startCall(path: String, payload: [UInt8], timeoutNanoseconds: Int64?, probeAfterNanoseconds: Int64? = nil,
                   writesAtOnce: Bool = false, completion: @escaping Completion) -> Int32? {
        guard isUsable else {
            completion(.failure(CallNotStarted(peer: peerDescription)))
            return nil
        }
        let stream = ClientStream(request: payload, completion: completion,
                                  maxResponseMessageBytes: maxResponseMessageBytes)
        let headers = requestHeaders[path] ?? {
            let pathHeader = HeaderField(":path", path)
            let fields = ([HeaderField.methodPOST, HeaderField.schemeHTTP, pathHeader, authority, HeaderField.contentTypeGRPC,
                           HeaderField.te, HeaderField.userAgent] + extraHeaders).map(\.field)
            requestHeaders[path] = (pathHeader, fields)
            return (pathHeader, fields)
        }()
        var provider = Nghttp2Session.bodyProvider
        let streamID: Int32
        if let timeoutNanoseconds {
            if lastTimeout?.nanoseconds != timeoutNanoseconds {
                lastTimeout = (timeoutNanoseconds, GRPCTimeout.format(nanoseconds: timeoutNanoseconds))
            }
            streamID = withCopiedField("grpc-timeout", lastTimeout!.text) { timeout in
                var fields = headers.fields
                fields.append(timeout)
                return nghttp2_submit_request(session.raw, nil, fields, fields.count, &provider, nil)
            }
        } else {
            streamID = nghttp2_submit_request(session.raw, nil, headers.fields, headers.fields.count, &provider, nil)
        }
        guard streamID > 0 else {
            stream.complete(.failure(RPCError(.unavailable, "cannot start a call to \(peerDescription): \(String(cString: nghttp2_strerror(streamID)))")))
            return nil
        }
        streams[streamID] = stream
        if timeoutNanoseconds != nil || probeAfterNanoseconds != nil {
            let now = NIODeadline.now()
            if let timeoutNanoseconds {
                let deadline = now + .nanoseconds(timeoutNanoseconds) + deadlineSlack
                stream.deadline = deadline
                watch(deadline)
            }
            if let probeAfterNanoseconds, probeAfterNanoseconds > 0 {
                let wait = TimeAmount.nanoseconds(probeAfterNanoseconds)
                stream.probe = (now + wait, wait)
                watch(now + wait)
            }
        }
        callsSinceWrite += writesAtOnce ? Self.callsPerWrite : 1
        // Not from inside nghttp2's callbacks (a completion may start a call): the read
        // cycle's or the drain's end writes.
        if callsSinceWrite >= Self.callsPerWrite && !session.isBusy { flush() } else { scheduleFlush() }
        return streamID
    }

    /// Resets a call its caller gave up on (its completion was told already).
    func cancel(streamID: Int32) {
        reset(streamID: streamID, failing: CallCancellation.cancelled)
    }

    /// Makes sure a sweep runs by `deadline`. One timer serves every call (one timer per call
    /// cost a heap insert and removal each): it fires at the earliest deadline, fails the
    /// calls past theirs, and is set again for the next.
    private func watch(_ deadline: NIODeadline) {
        guard let context else { return }
        if let sweep = deadlineSweep, sweep.at <= deadline { return }
        deadlineSweep?.timer.cancel()
        let timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.sweepDeadlines()
        }
        deadlineSweep = (deadline, timer)
    }

    private func sweepDeadlines() {
        deadlineSweep = nil
        let now = NIODeadline.now()
        var expired: [Int32] = []
        var toProbe: [Int32] = []
        var probeWait = TimeAmount.zero
        var next: NIODeadline?
        for (streamID, stream) in streams {
            if let deadline = stream.deadline, deadline <= now {
                expired.append(streamID)
                continue
            }
            if let probe = stream.probe, probe.at <= now {
                stream.probe = nil
                toProbe.append(streamID)
                probeWait = max(probeWait, probe.wait)
            }
            if let deadline = stream.deadline { next = min(next ?? deadline, deadline) }
            if let probe = stream.probe { next = min(next ?? probe.at, probe.at) }
        }
        for streamID in expired { expire(streamID: streamID) }
        if let ping, ping.answerDue <= now {
            // No answer to the PING: the server is paused or cut off.
            self.ping = nil
            for streamID in ping.calls {
                reset(streamID: streamID, failing: RPCError(
                    .unavailable, "\(peerDescription) answered neither the call nor a ping", peerSilent: true))
            }
        }
        if !toProbe.isEmpty {
            if ping != nil {
                ping!.calls += toProbe
            } else {
                nghttp2_submit_ping(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
                ping = (now + probeWait, probeWait, toProbe)
                scheduleFlush()
            }
        }
        if let ping { next = min(next ?? ping.answerDue, ping.answerDue) }
        if let next { watch(next) }
    }

    /// The server answered while a PING was out: the calls that asked wait for their
    /// answers, and ask again as long from now if none comes (it may stop later).
    private func serverIsAlive() {
        guard let ping else { return }
        self.ping = nil
        let now = NIODeadline.now()
        for streamID in ping.calls {
            guard let stream = streams[streamID] else { continue }
            stream.probe = (now + ping.wait, ping.wait)
            watch(now + ping.wait)
        }
    }

    private func expire(streamID: Int32) {
        reset(streamID: streamID, failing: RPCError(.deadlineExceeded, "deadline exceeded waiting for \(peerDescription)"))
    }

    /// Ends a call this side gives up on: the stream is reset and its caller hears `error`.
    private func reset(streamID: Int32, failing error: RPCError) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        nghttp2_submit_rst_stream(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_CANCEL.rawValue)
        stream.complete(.failure(error))
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard let context else { return }
        guard session.claimFlush() else { return }
        context.eventLoop.assumeIsolated().execute { [self] in
            session.flushRan()
            flush()
        }
    }

    private func flush() {
        callsSinceWrite = 0
        guard isOpen, let context, context.channel.isActive else { return }
        switch session.drain(into: context, whileWritable: false) {
        case .open:
            break
        case .finished:
            close()
        case .failed(let reason):
            failAll(RPCError(.internalError, "nghttp2 send failed: \(reason)"))
            close()
        }
    }

    // MARK: nghttp2 callbacks (Nghttp2SessionDelegate)

    func sessionBeganRequest(streamID: Int32) {}

    func sessionReadsBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                          flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[streamID] else {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        let written = stream.readRequest(into: buffer, length: length)
        if stream.requestFullySent { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return written
    }

    func sessionReceivedHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        streams[streamID]?.answer.receiveHeader(name: name, value: value)
    }

    func sessionReceivedData(streamID: Int32, _ data: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else { return }
        if !stream.answer.receiveData(data) {
            streams[streamID] = nil
            nghttp2_submit_rst_stream(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_CANCEL.rawValue)
            stream.complete(.failure(RPCError(.resourceExhausted, "response from \(peerDescription) is over the limit of \(maxResponseMessageBytes) bytes")))
        }
    }

    func sessionClosedStream(streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        let answer = stream.answer
        stream.answer = ClientCallAnswer(maxMessageBytes: 0)  // the answer's bytes move out, not copied
        stream.complete(answer.outcome(resetCode: errorCode, peer: peerDescription).mapError { $0 })
    }

    func sessionReceivedFrame(streamID: Int32, _ frame: Nghttp2Session.Frame, endStream: Bool) {
        switch frame {
        case .goaway: onUnusable()
        case .pingAck: serverIsAlive()
        default: break
        }
    }
}

/// The connection closed or drained before the call could start: nothing was sent, so the
/// call may go out again on a new connection.
struct CallNotStarted: Error {
    let peer: String
}
