import AeroCacheRPC

/// The life of one call on a server connection, as a value: the connection handler feeds it
/// what nghttp2 reports (a header, the end of the headers, a DATA chunk, the end of the
/// request, a deadline sweep, an answer, the stream's close) and does what it answers.
///
/// It decides; it does no I/O. Flow control and the connection's byte budget stay in the
/// handler, which owns the nghttp2 session.
///
/// ```text
/// receivingHeaders ─headersEnded─▶ receivingMessage ─requestEnded─▶ running ─answer─▶ responding
///        │ refused                     │        └──(answers must wait)─▶ waiting ─resume─▶ running
///        ▼                             ▼ refused / deadline / answered early
///    responding                    responding                       (any) ─closed─▶ closed
/// ```
struct ServerCallMachine {
    enum Phase: Equatable {
        case receivingHeaders, receivingMessage, waiting, running, responding, closed
    }

    /// A call answered without running: the HTTP status of the answer and its gRPC error.
    struct Refusal: Equatable {
        /// 200 for a gRPC error; 405 or 415 when the request is not gRPC at all.
        var httpStatus: Int
        var error: RPCError

        init(httpStatus: Int, error: RPCError) {
            self.httpStatus = httpStatus
            self.error = error
        }
    }

    /// What the handler does once the request's headers are complete.
    enum HeadersAction: Equatable {
        /// The call goes on; with a deadline, the handler watches it while the body arrives.
        case receive(watchDeadline: Bool)
        case refuse(Refusal)
        /// Not a request this machine expects (a late or repeated HEADERS): nothing to do.
        case ignore
    }

    /// What the handler does with a DATA chunk.
    enum DataAction: Equatable {
        /// Kept; `declaredMessageBytes` is the whole message's size (prefix included) the
        /// first time the chunk that completes the gRPC prefix arrives.
        case kept(declaredMessageBytes: Int?)
        /// Not kept (the call is answered or gone): its window goes straight back.
        case dropped
        /// The message broke a rule: answer with this error, and give the window back.
        case refuse(RPCError)
    }

    /// What the handler does when the request is complete, or a waiting one may go on.
    enum RunAction {
        case run(ServerMethod, request: [UInt8])
        /// Too many answers wait for the client: the call waits (watched for its deadline).
        case hold(watchDeadline: Bool)
        case refuse(RPCError)
        case ignore
    }

    /// What a deadline sweep does with this call.
    enum DeadlineAction: Equatable {
        /// Still running and in time.
        case keepWatching
        /// No longer running: stop watching it.
        case forget
        case refuse(RPCError)
    }

    /// What answering changes, for the handler's bookkeeping.
    struct Answering: Equatable {
        /// The call was in the queue of calls waiting to run.
        var leftWaitQueue: Bool
        /// The request had not all arrived: the rest is dropped, its window given back.
        var requestWasIncomplete: Bool
    }

    /// What every call on the server is checked against (shared, never copied per header).
    final class Rules: Sendable {
        let router: ServerRouter
        /// How peer calls are recognised; nil: no call is a peer call.
        let credential: PeerCredential?
        /// The tokens callers present; nil: calls need none.
        let tokens: TokenRegistry?
        let maxMessageBytes: Int

        init(router: ServerRouter, credential: PeerCredential?, tokens: TokenRegistry? = nil, maxMessageBytes: Int) {
            self.router = router
            self.credential = credential
            self.tokens = tokens
            self.maxMessageBytes = maxMessageBytes
        }
    }

    private let rules: Rules
    private(set) var phase = Phase.receivingHeaders
    private(set) var method: ServerMethod?
    /// The call carried the cluster's credential.
    private(set) var isPeer = false
    /// What the call's `authorization` header proved.
    private(set) var token: TokenCheck
    /// When the caller stops waiting, in ``nanoseconds`` of the monotonic clock.
    private(set) var deadline: UInt64?
    private(set) var collector: UnaryMessageCollector
    private var unknownPath: String?
    private var isPOST = false
    private var isGRPCContentType = false
    private var timeoutNanoseconds: Int64?
    private var badTimeout = false
    private var unsupportedEncoding: String?
    /// The complete request of a call held back while too many answers wait.
    private var heldRequest: [UInt8]?

    /// Longest piece of a request quoted in an error message.
    static let maxQuotedBytes = 128

    init(rules: Rules) {
        self.rules = rules
        token = rules.tokens == nil ? .notRequired : .missing
        collector = UnaryMessageCollector(maxMessageBytes: rules.maxMessageBytes)
    }

    // MARK: Events

    /// Whether a header with this name can change the call (others, as `:authority`, `te` or
    /// `user-agent`, need not be passed in: the handler saves an access per header).
    static func wants(headerNamed name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 5: name.equals(":path")
        case 7: name.equals(":method")
        case 12: name.equals("content-type") || name.equals("grpc-timeout")
        case 13: name.equals("grpc-encoding") || name.equals("authorization")
        default: name.equals(PeerCredential.headerName)
        }
    }

    /// One request header (one that it ``wants(headerNamed:)``; others change nothing).
    mutating func receiveHeader(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard phase == .receivingHeaders, let first = name.first else { return }
        if first == UInt8(ascii: ":") {
            if name.equals(":path") {
                method = rules.router.method(forPath: value)
                unknownPath = method == nil ? Self.quote(value) : nil
            } else if name.equals(":method") {
                isPOST = value.equals("POST")
            }
        } else if name.equals("content-type") {
            isGRPCContentType = value.hasPrefix("application/grpc")
        } else if name.equals("grpc-timeout") {
            timeoutNanoseconds = GRPCTimeout.parseNanoseconds(value)
            badTimeout = timeoutNanoseconds == nil
        } else if name.equals("grpc-encoding") {
            unsupportedEncoding = value.equals("identity") ? nil : Self.quote(value)
        } else if let credential = rules.credential, name.equals(PeerCredential.headerName) {
            isPeer = credential.admits(value)
        } else if let tokens = rules.tokens, name.equals("authorization") {
            // Two headers are refused, not resolved: which one counts is not the caller's choice.
            token = token == .missing ? tokens.role(ofAuthorization: value).map { .valid($0) } ?? .invalid : .invalid
        }
    }

    /// The request's headers are complete (`now`: the monotonic clock): refused at once if
    /// the call cannot be served, in the order gRPC checks (method, content type, timeout,
    /// encoding, path), then when the caller may not call the method (before its body is
    /// taken). `memberConnection`: the connection proved it is a cluster member's (mutual TLS).
    mutating func headersEnded(endStream: Bool, now: @autoclosure () -> UInt64, memberConnection: Bool = false) -> HeadersAction {
        guard phase == .receivingHeaders else { return .ignore }
        phase = .receivingMessage
        let refusal: Refusal? =
            if !isPOST {
                Refusal(httpStatus: 405, error: RPCError(.internalError, "gRPC requires the POST method"))
            } else if !isGRPCContentType {
                Refusal(httpStatus: 415, error: RPCError(.internalError, "content-type must be application/grpc"))
            } else if badTimeout {
                Refusal(httpStatus: 200, error: RPCError(.internalError, "malformed grpc-timeout header"))
            } else if let unsupportedEncoding {
                Refusal(httpStatus: 200, error: RPCError(.unimplemented, "grpc-encoding \(unsupportedEncoding) is not supported; use identity"))
            } else if let method {
                method.permission.refusal(path: method.path, context(memberConnection: memberConnection))
                    .map { Refusal(httpStatus: 200, error: $0) }
            } else {
                Refusal(httpStatus: 200, error: RPCError(.unimplemented, "unknown method \(unknownPath ?? "")"))
            }
        if let refusal {
            phase = .responding
            return .refuse(refusal)
        }
        if let timeoutNanoseconds {
            deadline = now() &+ UInt64(timeoutNanoseconds)
            return .receive(watchDeadline: !endStream)
        }
        return .receive(watchDeadline: false)
    }

    /// What the method is told about the call.
    func context(memberConnection: Bool) -> ServerCallContext {
        ServerCallContext(deadline: deadline, isPeer: isPeer || memberConnection, token: token)
    }

    /// A chunk of the request body.
    mutating func receiveData(_ chunk: UnsafeRawBufferPointer) -> DataAction {
        guard phase == .receivingMessage else { return .dropped }
        let sizeWasKnown = collector.declaredMessageBytes != nil
        do {
            try collector.append(chunk)
        } catch {
            return .refuse(error)
        }
        guard !sizeWasKnown, let declared = collector.declaredMessageBytes else { return .kept(declaredMessageBytes: nil) }
        return .kept(declaredMessageBytes: MessageFrame.prefixLength + declared)
    }

    /// The client half-closed the stream. `answersMustWait`: too many answers wait on this
    /// connection (or all of them) for the call to run now.
    mutating func requestEnded(answersMustWait: Bool, now: @autoclosure () -> UInt64) -> RunAction {
        guard phase == .receivingMessage, method != nil else { return .ignore }
        let request: [UInt8]
        do {
            request = try collector.finish()
        } catch {
            return .refuse(error)
        }
        collector = UnaryMessageCollector(maxMessageBytes: 0)
        if answersMustWait {
            phase = .waiting
            heldRequest = request
            return .hold(watchDeadline: deadline != nil)
        }
        return start(request, now: now)
    }

    /// A call held back by waiting answers may run now.
    mutating func resume(now: @autoclosure () -> UInt64) -> RunAction {
        guard phase == .waiting, let request = heldRequest else { return .ignore }
        heldRequest = nil
        return start(request, now: now)
    }

    /// Out of the queue (if it waited), the call runs, unless its deadline already passed.
    private mutating func start(_ request: [UInt8], now: () -> UInt64) -> RunAction {
        guard let method else { return .ignore }
        phase = .running
        if let deadline, deadline < now() {
            return .refuse(RPCError(.deadlineExceeded, "deadline exceeded before the call started"))
        }
        return .run(method, request: request)
    }

    /// A sweep of calls with deadlines passes at `now`.
    func checkDeadline(now: UInt64) -> DeadlineAction {
        switch phase {
        case .receivingMessage, .waiting, .running:
            guard let deadline, deadline <= now else { return .keepWatching }
            return .refuse(RPCError(.deadlineExceeded, "deadline exceeded before the call completed"))
        case .receivingHeaders, .responding, .closed:
            return .forget
        }
    }

    /// The call is answered now (its result, a refusal or a deadline); nil when it already
    /// was, or its stream is gone: a call is answered once.
    mutating func answer() -> Answering? {
        switch phase {
        case .responding, .closed:
            return nil
        case .receivingHeaders, .receivingMessage, .waiting, .running:
            let answering = Answering(leftWaitQueue: phase == .waiting, requestWasIncomplete: phase == .receivingMessage)
            phase = .responding
            releaseRequest()
            return answering
        }
    }

    /// The stream closed; returns whether the call was waiting in the queue. A late answer
    /// (from a call still running) finds it closed.
    mutating func closed() -> Bool {
        let wasWaiting = phase == .waiting
        phase = .closed
        releaseRequest()
        return wasWaiting
    }

    /// Lets go of the request's bytes: what arrived so far, or the held complete request.
    private mutating func releaseRequest() {
        collector = UnaryMessageCollector(maxMessageBytes: 0)
        heldRequest = nil
    }

    /// A header value as an error message may quote it: at most ``maxQuotedBytes`` bytes.
    private static func quote(_ value: UnsafeRawBufferPointer) -> String {
        let shown = String(decoding: value.prefix(maxQuotedBytes), as: UTF8.self)
        return value.count > maxQuotedBytes ? shown + "… (\(value.count) bytes)" : shown
    }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are the ASCII text `expected`.
    @inline(__always)
    func equals(_ expected: StaticString) -> Bool {
        count == expected.utf8CodeUnitCount && hasPrefix(expected)
    }

    /// Whether these bytes start with the ASCII text `expected`.
    @inline(__always)
    func hasPrefix(_ expected: StaticString) -> Bool {
        let length = expected.utf8CodeUnitCount
        guard count >= length else { return false }
        let start = expected.utf8Start
        for index in 0..<length where self[index] != start[index] { return false }
        return true
    }
}
