import AeroCacheRPC
import CNghttp2
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// One server-side HTTP/2 connection: bytes in, gRPC calls dispatched, bytes out.
///
/// libnghttp2 does the HTTP/2 framing, HPACK and flow control; this handler feeds it what
/// the socket reads, turns its callbacks into calls on ``ServerMethod``s, and writes what it
/// has to send once per read cycle, in one buffer and one flush.
///
/// Memory is bounded per connection, whatever the client does: large requests (until
/// answered) and unsent answers together stay within ``Settings/maxHeldBytes``, plus the
/// first ``Settings/initialWindowSize`` bytes of each open stream and the answers of calls
/// already running:
/// - request bodies are under HTTP/2 flow control that the handler drives itself. Every
///   stream may send its first window; a message larger than that gets the window for all of
///   it once its size (read from the gRPC prefix) fits the budget, in arrival order. The
///   connection's window goes back as bytes arrive, so a stream that has its window always
///   completes, whatever the streams still waiting send; one that has not sent it all by its
///   body deadline (``Settings/bodyDeadline(forBytes:)``) is answered, so none keeps its
///   share of the budget for ever;
/// - a request that completes while too many answers wait is held back (not run) until the
///   client has taken them;
/// - nghttp2's output goes to the socket only while the socket takes it.
/// The handler never stops reading the socket: the client's WINDOW_UPDATEs, which let the
/// waiting answers go, arrive there.
final class ServerConnectionHandler: ChannelInboundHandler, Nghttp2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Fired down the pipeline to start a graceful close: GOAWAY, finish in-flight calls, close.
    struct GracefulShutdownEvent: Sendable {}

    struct Settings: Sendable {
        var maxRequestMessageBytes: Int
        var maxConcurrentStreams: UInt32
        var initialWindowSize: UInt32
        var connectionWindowSize: Int32
        /// Bytes of large requests and unsent answers one connection may hold: past it, large
        /// requests wait for window and completed ones wait to run.
        var maxHeldBytes: Int
        /// What all connections hold together, against its own limit.
        var total: HeldBytes
        /// Recognises peer calls (``ServerCallContext/isPeer``); nil: no call is a peer call.
        var peerCredential: PeerCredential?
        /// The tokens calls must carry; nil: calls need none.
        var tokens: TokenRegistry?
        /// A request given the window for its whole message has this long, plus its size at
        /// ``minRequestBodyBytesPerSecond``, to send it; later it is answered
        /// `DEADLINE_EXCEEDED`, and its share of the budget freed (a stalled or trickling
        /// client keeps no share for ever).
        var requestBodyGrace: TimeAmount = .seconds(10)
        var minRequestBodyBytesPerSecond = 1 << 20

        /// How long after its admission a request body of `bytes` may take to arrive.
        func bodyDeadline(forBytes bytes: Int) -> TimeAmount {
            requestBodyGrace + .nanoseconds(Int64(bytes) * 1_000_000_000 / Int64(max(1, minRequestBodyBytesPerSecond)))
        }
    }

    /// Longest `grpc-message` sent.
    static let maxMessageBytes = 1024

    /// `:status 200` and the gRPC content type, the headers of every answer with a message
    /// (nghttp2 copies the array, and reads the process-wide fields in place).
    nonisolated(unsafe) private static let okResponseFields: UnsafeMutablePointer<nghttp2_nv> = {
        let fields = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: 2)
        fields.initialize(from: [HeaderField.status200.field, HeaderField.contentTypeGRPC.field], count: 2)
        return fields
    }()

    private let rules: ServerCallMachine.Rules
    private let settings: Settings
    private let jobs: AsyncStream<ServerJob>.Continuation
    private let logger: Logger
    private let session = Nghttp2Session(role: .server, manualWindowUpdates: true)
    private var streams: [Int32: ServerStream] = [:]
    /// The stream whose request headers are arriving now, if any.
    private var receivingHeaders: ServerStream?
    private var context: ChannelHandlerContext?
    private var isOpen = true
    private var started = false
    /// Running calls with a deadline, checked by `deadlineSweep`.
    private var runningWithDeadlines: [Int32: ServerStream] = [:]
    private var deadlineSweep: Scheduled<Void>?
    /// Bytes set aside for the large requests given their window, until answered.
    private var reservedRequestBytes = 0
    /// Answer bytes not yet handed to nghttp2's output.
    private var heldResponseBytes = 0
    /// What this connection last reported to ``Settings/total`` (once per flush, not per call).
    private var reportedRequestBytes = 0
    private var reportedResponseBytes = 0
    /// A recheck is scheduled: this connection waits for the others to free their bytes.
    private var recheckScheduled = false
    /// Streams whose complete request is held back while too many answers wait, oldest first;
    /// ones that closed meanwhile are skipped (and compacted away).
    private var waiting: [ServerStream] = []
    private var waitingHead = 0
    private var waitingGone = 0
    /// Streams whose message is larger than the first window, waiting for the rest of it,
    /// oldest first; ones that ended meanwhile are skipped (and compacted away).
    private var awaitingWindow: [ServerStream] = []
    private var awaitingWindowHead = 0
    /// The client proved with a certificate that it is a cluster member (mutual TLS).
    private var connectionIsMember = false
    /// Names this connection to ``HeldBytes`` when it takes the one exemption from the total.
    private let owner = HeldBytes.newOwner()
    /// Looks for requests given their window that stopped sending; scheduled while there are some.
    private var stalledBodySweep: Scheduled<Void>?

    init(router: ServerRouter, settings: Settings,
         jobs: AsyncStream<ServerJob>.Continuation, logger: Logger) {
        self.rules = ServerCallMachine.Rules(router: router, credential: settings.peerCredential, tokens: settings.tokens,
                                             maxMessageBytes: settings.maxRequestMessageBytes)
        self.settings = settings
        self.jobs = jobs
        self.logger = logger
        session.delegate = self
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context refers back to this handler: let go of it so that both, and the
        // nghttp2 session freed in deinit, go with the connection.
        tearDown()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }


    /// Sends the server's SETTINGS, which must be its first frame; once, whichever of
    /// `handlerAdded` (channel already active) and `channelActive` comes first.
    private func start() {
        guard !started else { return }
        started = true
        session.submitSettings([(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams),
                                (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initialWindowSize)],
                               connectionWindow: settings.connectionWindowSize)
        flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let failure = session.receive(unwrapInboundIn(data)) {
            logger.debug("closing connection: \(failure)")
            flush()
            close()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.endReadCycle()
        flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    /// Whether a request that completes now must wait: too many answers wait here, or
    /// everywhere together (answers only: requests still arriving never hold up a call).
    private var answersMustWait: Bool {
        heldResponseBytes >= settings.maxHeldBytes || settings.total.answersAreOver
    }

    /// The connection is gone: every call ends, nothing is kept.
    private func tearDown() {
        isOpen = false
        deadlineSweep?.cancel()
        deadlineSweep = nil
        stalledBodySweep?.cancel()
        stalledBodySweep = nil
        runningWithDeadlines.removeAll()
        for stream in streams.values {
            releaseRequest(of: stream)
            _ = stream.call.closed()
        }
        streams.removeAll()
        receivingHeaders = nil
        waiting.removeAll()
        waitingHead = 0
        waitingGone = 0
        awaitingWindow.removeAll()
        awaitingWindowHead = 0
        reservedRequestBytes = 0
        heldResponseBytes = 0
        reportHeldBytes()
    }

    /// Brings the server-wide totals up to date with what this connection holds.
    private func reportHeldBytes() {
        if reservedRequestBytes != reportedRequestBytes || heldResponseBytes != reportedResponseBytes {
            settings.total.add(requests: reservedRequestBytes - reportedRequestBytes,
                               answers: heldResponseBytes - reportedResponseBytes)
            reportedRequestBytes = reservedRequestBytes
            reportedResponseBytes = heldResponseBytes
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        close()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GracefulShutdownEvent {
            nghttp2_submit_goaway(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue),
                                  nghttp2_session_get_last_proc_stream_id(session.raw),
                                  NGHTTP2_NO_ERROR.rawValue, nil, 0)
            flush()
            return
        }
        // Under mutual TLS a client certificate is verified against the cluster's CA during
        // the handshake (one that fails to verify ends the connection): a connection that
        // presented one comes from a cluster member.
        if case .handshakeCompleted = event as? TLSUserEvent,
           let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
           tls.peerCertificate != nil {
            connectionIsMember = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func close() {
        guard isOpen else { return }
        isOpen = false
        context?.close(promise: nil)
    }

    /// Sends what nghttp2 has queued, in as few writes as the socket takes, then closes if the
    /// session is over. While the socket is full, the rest stays queued in nghttp2 (and the
    /// answers in their streams) until ``channelWritabilityChanged(context:)``.
    private func flush() {
        guard isOpen, let context else { return }
        switch session.drain(into: context, whileWritable: true) {
        case .open:
            runWaitingCalls()
        case .finished:
            close()
        case .failed(let reason):
            logger.debug("nghttp2 send failed: \(reason)")
            close()
        }
    }

    /// Runs held-back requests while the answers fit the budget, and gives waiting large
    /// requests their window while the budget has room for them.
    private func runWaitingCalls() {
        reportHeldBytes()
        var ranSome = false
        while waitingHead < waiting.count && !answersMustWait && isOpen {
            let stream = waiting[waitingHead]
            waitingHead += 1
            let action = stream.call.resume(now: Self.now())
            if case .ignore = action {
                waitingGone -= 1  // closed or answered meanwhile: counted as gone
            } else {
                perform(action, for: stream)
                ranSome = true
            }
        }
        // Calls answered at once queued their answers after this flush wrote: another one.
        if ranSome { flushSoon() }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
            waitingGone = 0
        }
        let heldBackByOthers = grantWaitingWindows()
        reportHeldBytes()
        // Held back only by what the other connections hold: look again shortly.
        if (heldBackByOthers || (waitingHead < waiting.count && settings.total.answersAreOver)), !recheckScheduled, let context {
            recheckScheduled = true
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(10)) { [self] in
                recheckScheduled = false
                flush()
            }
        }
    }

    /// A stream's message is `messageBytes` long (prefix included): if that is more than the
    /// window every stream starts with, it waits its turn for the rest.
    private func messageSizeKnown(_ stream: ServerStream, messageBytes: Int) {
        if messageBytes <= Int(settings.initialWindowSize) {
            stream.hasWindow = true
            giveWindowBack(stream)
            return
        }
        stream.messageBytes = messageBytes
        awaitingWindow.append(stream)
        // Ended streams behind one that waits long (this connection's answers unread) are
        // dropped once they outnumber the streams still open.
        if awaitingWindow.count - awaitingWindowHead > 2 * streams.count + 64 {
            awaitingWindow = awaitingWindow[awaitingWindowHead...].filter { $0.call.phase == .receivingMessage && !$0.hasWindow }
            awaitingWindowHead = 0
        }
        reportHeldBytes()
        _ = grantWaitingWindows()
        reportHeldBytes()
    }

    /// Gives waiting large requests, oldest first, the window for their whole message while
    /// the budget has room; returns whether the budget of all connections together (not this
    /// one's) is what holds the next one back.
    private func grantWaitingWindows() -> Bool {
        var heldBackByOthers = false
        while awaitingWindowHead < awaitingWindow.count && isOpen {
            let stream = awaitingWindow[awaitingWindowHead]
            guard stream.call.phase == .receivingMessage, !stream.hasWindow else {
                awaitingWindowHead += 1
                continue
            }
            let bytes = stream.messageBytes
            // At most two of the largest requests fill the budget: with nothing else held, one fits.
            guard reservedRequestBytes + heldResponseBytes + bytes <= settings.maxHeldBytes else { break }
            if !settings.total.hasRoom(for: bytes) {
                // All connections together are full: one request at a time goes on past the
                // limit (so that none waits on another forever); the others look again shortly.
                guard settings.total.takeExemption(owner) else {
                    // Held by another connection: look again shortly. Held here: its release
                    // (the last byte of that request, or its answer) flushes, and looks again.
                    if !settings.total.exemptionIsHeld(by: owner) { heldBackByOthers = true }
                    break
                }
                stream.holdsExemption = true
            }
            awaitingWindowHead += 1
            reservedRequestBytes += bytes
            stream.reservedBytes = bytes
            stream.hasWindow = true
            stream.bodyDeadline = .now() + settings.bodyDeadline(forBytes: bytes)
            watchForStalledBodies()
            // The window grows to the whole message; what already arrived goes back too.
            nghttp2_session_set_local_window_size(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id,
                                                  Int32(clamping: bytes))
            giveWindowBack(stream)
            settings.total.add(requests: bytes, answers: 0)
            reportedRequestBytes += bytes
        }
        if awaitingWindowHead == awaitingWindow.count {
            awaitingWindow.removeAll(keepingCapacity: true)
            awaitingWindowHead = 0
        } else if awaitingWindowHead > 64 && awaitingWindowHead * 2 > awaitingWindow.count {
            awaitingWindow.removeFirst(awaitingWindowHead)
            awaitingWindowHead = 0
        }
        return heldBackByOthers
    }

    /// Gives the client back the stream window of the request bytes `stream` kept; the
    /// WINDOW_UPDATE goes out with the next flush.
    private func giveWindowBack(_ stream: ServerStream) {
        guard stream.unconsumedBytes > 0 else { return }
        nghttp2_session_consume_stream(session.raw, stream.id, stream.unconsumedBytes)
        stream.unconsumedBytes = 0
        flushSoon()
    }

    /// Sweeps for request bodies past their deadline every second while some request has its window.
    private func watchForStalledBodies() {
        guard stalledBodySweep == nil, let context else { return }
        stalledBodySweep = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            stalledBodySweep = nil
            let now = NIODeadline.now()
            var watching = false
            for stream in streams.values where stream.call.phase == .receivingMessage && stream.reservedBytes > 0 {
                if stream.bodyDeadline <= now {
                    let received = stream.call.collector.byteCount
                    let allowed = settings.bodyDeadline(forBytes: stream.messageBytes).nanoseconds / 1_000_000
                    respond(stream, .failure(RPCError(.deadlineExceeded,
                        "the request did not arrive within \(allowed) ms of its turn "
                            + "(\(received) of its \(stream.messageBytes) bytes did)")))
                    flushSoon()
                } else {
                    watching = true
                }
            }
            if watching { watchForStalledBodies() }
        }
    }

    /// Flushes once the current event-loop task is done: answers completed together (a
    /// batch of replica acknowledgements) go out in one write. A read cycle flushes at its end.
    private func flushSoon() {
        guard let context else { return }
        guard session.claimFlush() else { return }
        context.eventLoop.assumeIsolated().execute { [self] in
            session.flushRan()
            flush()
        }
    }

    // MARK: Request side (nghttp2 callbacks)

    private func onBeginHeaders(streamID: Int32) {
        let stream = ServerStream(id: streamID, rules: rules)
        streams[streamID] = stream
        receivingHeaders = stream
    }

    private func onHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard ServerCallMachine.wants(headerNamed: name) else { return }
        // The headers of one request arrive together, right after it began: no lookup each.
        let stream = receivingHeaders?.id == streamID ? receivingHeaders : streams[streamID]
        stream?.call.receiveHeader(name: name, value: value)
    }

    /// The request's headers are complete: refused at once if it cannot be served.
    private func onRequestHeaders(streamID: Int32, endStream: Bool) {
        let stream = receivingHeaders?.id == streamID ? receivingHeaders : streams[streamID]
        receivingHeaders = nil
        guard let stream else { return }
        switch stream.call.headersEnded(endStream: endStream, now: Self.now(), memberConnection: connectionIsMember) {
        case .receive(let watchDeadline):
            if watchDeadline, let context { armDeadline(stream, on: context.eventLoop) }
        case .refuse(let refusal):
            releaseRequest(of: stream)
            submitTrailersOnly(stream, httpStatus: HeaderField.status(refusal.httpStatus), refusal.error)
        case .ignore:
            break
        }
    }

    private func onDataChunk(streamID: Int32, data: UnsafeRawBufferPointer) {
        // The connection's window goes back at once: each stream's own window bounds what it
        // sends, and a connection window held for waiting streams would stall the one that has
        // its window (which then never completes to free the budget).
        nghttp2_session_consume_connection(session.raw, data.count)
        guard let stream = streams[streamID] else {
            nghttp2_session_consume_stream(session.raw, streamID, data.count)
            return
        }
        switch stream.call.receiveData(data) {
        case .dropped:
            nghttp2_session_consume_stream(session.raw, streamID, data.count)
        case .refuse(let error):
            nghttp2_session_consume_stream(session.raw, streamID, data.count)
            respond(stream, .failure(error))
        case .kept(let declaredMessageBytes):
            stream.unconsumedBytes += data.count
            if stream.hasWindow {
                giveWindowBack(stream)
            } else if let declaredMessageBytes {
                messageSizeKnown(stream, messageBytes: declaredMessageBytes)
            }
        }
    }

    /// The monotonic clock the call machines count deadlines in (NIODeadline's).
    private static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// The stream is answered or gone: its request's share of the budget no longer counts.
    private func releaseRequest(of stream: ServerStream) {
        reservedRequestBytes -= stream.reservedBytes
        stream.reservedBytes = 0
        releaseExemption(of: stream)
    }

    private func releaseExemption(of stream: ServerStream) {
        guard stream.holdsExemption else { return }
        settings.total.releaseExemption(owner)
        stream.holdsExemption = false
    }

    /// A held-back stream closed or was answered (its deadline): its place in the queue is
    /// skipped, and the queue compacted once mostly such places.
    private func forgetWaiting(_ stream: ServerStream) {
        waitingGone += 1
        if waitingGone > 16 && waitingGone * 2 > waiting.count - waitingHead {
            waiting = waiting[waitingHead...].filter { $0.call.phase == .waiting && $0 !== stream }
            waitingHead = 0
            waitingGone = 0
        }
    }

    /// The client half-closed the stream: the request is complete, run it.
    private func onRequestEnd(streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        let action = stream.call.requestEnded(answersMustWait: answersMustWait, now: Self.now())
        // Complete (or refused): the next request past the server-wide total may have its turn.
        if case .ignore = action {} else { releaseExemption(of: stream) }
        perform(action, for: stream)
    }

    /// Does what the call's machine decided once its request is complete.
    private func perform(_ action: ServerCallMachine.RunAction, for stream: ServerStream) {
        switch action {
        case .run(let method, let request):
            run(stream, method: method, request: request)
        case .hold(let watchDeadline):
            waiting.append(stream)
            if watchDeadline, let context { armDeadline(stream, on: context.eventLoop) }
        case .refuse(let error):
            respond(stream, .failure(error))
        case .ignore:
            break
        }
    }

    /// Hands a complete request to its method.
    private func run(_ stream: ServerStream, method: ServerMethod, request: [UInt8]) {
        let callContext = stream.call.context(memberConnection: connectionIsMember)
        do {
            switch try method.body(request, callContext) {
            case .now(let response): respond(stream, .success(response))
            case .later(let work): runLater(stream, work)
            case .callback(let start): runWithCallback(stream, start)
            }
        } catch {
            respond(stream, .failure(error))
        }
    }

    /// Starts callback-style work; its completion answers `stream` on the event loop.
    private func runWithCallback(
        _ stream: ServerStream,
        _ start: @Sendable (_ completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) -> Void
    ) {
        guard let answer = startRunning(stream) else { return }
        start(answer)
    }

    /// Runs `work` in the server's task group and answers `stream` on the event loop.
    private func runLater(_ stream: ServerStream, _ work: @escaping @Sendable () async throws -> [UInt8]) {
        guard let answer = startRunning(stream), let eventLoop = context?.eventLoop else { return }
        jobs.yield(ServerJob(eventLoop: eventLoop) {
            do {
                answer(.success(try await work()))
            } catch let error as RPCError {
                answer(.failure(error))
            } catch {
                answer(.failure(RPCError(.internalError, "handler failed: \(error)")))
            }
        })
    }

    /// Marks `stream` as running (with its deadline armed) and returns the function that
    /// answers it from any thread, hopping to the event loop when called off it.
    private func startRunning(_ stream: ServerStream) -> (@Sendable (Result<[UInt8], RPCError>) -> Void)? {
        guard let eventLoop = context?.eventLoop else { return nil }
        armDeadline(stream, on: eventLoop)
        let loopBound = NIOLoopBound((self, stream), eventLoop: eventLoop)
        return { result in
            let answer: @Sendable () -> Void = {
                let (handler, stream) = loopBound.value
                handler.respond(stream, result)
                handler.flushSoon()
            }
            if eventLoop.inEventLoop { answer() } else { eventLoop.execute(answer) }
        }
    }

    /// Puts a running call with a deadline under the deadline sweep.
    ///
    /// One repeating timer per connection, rather than one per call: a timer per call costs a
    /// heap insertion and removal, and calls that go on running (waiting for replicas) almost
    /// always finish long before their deadline. A deadline is enforced within
    /// ``deadlineSweepInterval`` of passing.
    private func armDeadline(_ stream: ServerStream, on eventLoop: any EventLoop) {
        guard stream.call.deadline != nil else { return }
        runningWithDeadlines[stream.id] = stream
        if deadlineSweep == nil { scheduleDeadlineSweep(on: eventLoop) }
    }

    private func scheduleDeadlineSweep(on eventLoop: any EventLoop) {
        deadlineSweep = eventLoop.assumeIsolated().scheduleTask(in: Self.deadlineSweepInterval) { [self] in
            deadlineSweep = nil
            let now = Self.now()
            for (id, stream) in runningWithDeadlines {
                switch stream.call.checkDeadline(now: now) {
                case .keepWatching:
                    break
                case .forget:
                    runningWithDeadlines[id] = nil
                case .refuse(let error):
                    runningWithDeadlines[id] = nil
                    respond(stream, .failure(error))
                    flushSoon()
                }
            }
            if !runningWithDeadlines.isEmpty { scheduleDeadlineSweep(on: eventLoop) }
        }
    }

    static let deadlineSweepInterval = TimeAmount.milliseconds(5)

    private func onStreamClose(streamID: Int32) {
        if receivingHeaders?.id == streamID { receivingHeaders = nil }
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        // What it still held: its request's share of the budget, an answer not all sent.
        releaseRequest(of: stream)
        if stream.call.closed() { forgetWaiting(stream) }
        heldResponseBytes -= stream.unsentResponseBytes
        stream.unsentResponseBytes = 0
        stream.response = []
    }

    // MARK: Response side

    /// Answers a call once: a message then `grpc-status: 0`, or a Trailers-Only error.
    private func respond(_ stream: ServerStream, _ result: Result<[UInt8], RPCError>) {
        let ran = stream.call.phase == .running
        guard isOpen, let answering = stream.call.answer() else { return }
        if answering.leftWaitQueue { forgetWaiting(stream) }
        // Answered before its request arrived whole: what the client still sends is dropped,
        // and its window goes back, so a client that sends all before it reads is not stuck.
        if answering.requestWasIncomplete { giveWindowBack(stream) }
        releaseRequest(of: stream)
        switch result {
        case .success(let payload):
            stream.response = payload
            stream.unsentResponseBytes = MessageFrame.prefixLength + payload.count
            heldResponseBytes += stream.unsentResponseBytes
            var provider = Nghttp2Session.bodyProvider
            if nghttp2_submit_response(session.raw, stream.id, Self.okResponseFields, 2, &provider) != 0 {
                resetStream(stream)
            }
        case .failure(let error):
            // A fault of this node's own, met by a method it ran (not a malformed request, a
            // missing token or a peer that is down): one line each, at error level.
            if ran && (error.code == .internalError || error.code == .unknown || error.code == .dataLoss) {
                logger.error("a call failed here", metadata: ["method": "\(stream.call.method?.path ?? "?")",
                                                              "code": "\(error.code)", "error": "\(error.message)"])
            }
            submitTrailersOnly(stream, httpStatus: HeaderField.status200, error)
        }
    }

    private func submitTrailersOnly(_ stream: ServerStream, httpStatus: HeaderField, _ error: RPCError) {
        var message = error.message
        if message.utf8.count > Self.maxMessageBytes {
            message = String(decoding: message.utf8.prefix(Self.maxMessageBytes), as: UTF8.self) + "…"
        }
        var fields = [httpStatus.field, HeaderField.contentTypeGRPC.field, HeaderField.grpcStatus[error.code.rawValue].field]
        if error.code == .unimplemented { fields.append(HeaderField.grpcAcceptEncoding.field) }
        let submitted = withCopiedField("grpc-message", PercentEncoding.encode(message)) { message in
            fields.append(message)
            return nghttp2_submit_response(session.raw, stream.id, fields, fields.count, nil)
        }
        if submitted != 0 { resetStream(stream) }
    }

    /// Ends a stream whose answer could not be submitted: the client hears a reset, not nothing.
    private func resetStream(_ stream: ServerStream) {
        heldResponseBytes -= stream.unsentResponseBytes
        stream.unsentResponseBytes = 0
        stream.response = []
        nghttp2_submit_rst_stream(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, NGHTTP2_INTERNAL_ERROR.rawValue)
    }

    /// nghttp2 asks for up to `length` body bytes: the 5-byte prefix, then the message.
    private func readResponseData(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                                      flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let payloadCount = stream.response.count
        let total = MessageFrame.prefixLength + payloadCount
        var written = 0
        var offset = stream.responseOffset
        if offset < MessageFrame.prefixLength {
            let prefix = MessageFrame.prefix(length: payloadCount)
            withUnsafeBytes(of: prefix) { prefixBytes in
                let n = Swift.min(MessageFrame.prefixLength - offset, length)
                buffer.update(from: prefixBytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset, count: n)
                written = n
                offset += n
            }
        }
        if written < length && offset < total {
            let start = offset - MessageFrame.prefixLength
            let n = Swift.min(length - written, payloadCount - start)
            stream.response.withUnsafeBufferPointer { payload in
                (buffer + written).update(from: payload.baseAddress! + start, count: n)
            }
            written += n
            offset += n
        }
        stream.responseOffset = offset
        stream.unsentResponseBytes -= written
        heldResponseBytes -= written
        if offset == total {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            var trailer = HeaderField.grpcStatusOK.field
            nghttp2_submit_trailer(session.raw, streamID, &trailer, 1)
            stream.response = []
            stream.responseOffset = 0
        }
        return written
    }

    // MARK: nghttp2 callbacks (Nghttp2SessionDelegate)

    func sessionBeganRequest(streamID: Int32) {
        onBeginHeaders(streamID: streamID)
    }

    func sessionReceivedHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        onHeader(streamID: streamID, name: name, value: value)
    }

    func sessionReceivedFrame(streamID: Int32, _ frame: Nghttp2Session.Frame, endStream: Bool) {
        switch frame {
        case .headers(let isRequest):
            if isRequest { onRequestHeaders(streamID: streamID, endStream: endStream) }
            if endStream { onRequestEnd(streamID: streamID) }
        case .data:
            if endStream { onRequestEnd(streamID: streamID) }
        case .goaway, .pingAck, .other:
            break
        }
    }

    func sessionReceivedData(streamID: Int32, _ data: UnsafeRawBufferPointer) {
        onDataChunk(streamID: streamID, data: data)
    }

    func sessionClosedStream(streamID: Int32, errorCode: UInt32) {
        onStreamClose(streamID: streamID)
    }

    func sessionReadsBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                          flags: UnsafeMutablePointer<UInt32>) -> Int {
        readResponseData(streamID: streamID, into: buffer, length: length, flags: flags)
    }
}

/// One call on a server connection: its ``ServerCallMachine``, and what the handler keeps
/// for it on the wire (its answer, flow control, its share of the byte budget).
final class ServerStream {
    let id: Int32
    var call: ServerCallMachine
    /// The answer's message, and how much of it (prefix included) nghttp2 has taken.
    var response: [UInt8] = []
    var responseOffset = 0
    /// Bytes of the answer (prefix included) not yet handed to nghttp2.
    var unsentResponseBytes = 0
    /// Request bytes received but not yet given back to the stream's flow-control window.
    var unconsumedBytes = 0
    /// The stream may send its whole message: it fits the first window, or was given the rest.
    var hasWindow = false
    /// The message's size (prefix included) once known, when larger than the first window.
    var messageBytes = 0
    /// Budget set aside for the message while it is given its window, until answered.
    var reservedBytes = 0
    /// The stream went on past the limit of all connections together (one at a time does).
    var holdsExemption = false
    /// When the request, given its window, must have arrived whole.
    var bodyDeadline = NIODeadline.distantFuture

    init(id: Int32, rules: ServerCallMachine.Rules) {
        self.id = id
        self.call = ServerCallMachine(rules: rules)
    }
}
