import AeroCacheCore
import AeroCacheRPC
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOSSL
import NIOPosix
import SwiftProtobuf
import Synchronization

/// A gRPC client for one peer: one HTTP/2 connection, many concurrent calls multiplexed on it.
///
/// The connection is opened on the first call and re-opened after it drops. When connecting
/// fails, calls fail fast with `UNAVAILABLE` until an exponential backoff has passed, then the
/// next call tries again.
///
/// ```swift
/// let peer = GRPCClientConnection(host: "127.0.0.1", port: 7400, eventLoopGroup: group)
/// let reply = try await peer.unary(Cache.get, .with { $0.key = "user:1" }, timeout: .milliseconds(200))
/// ```
///
/// Every failure is thrown as an ``RPCError``.
public final class GRPCClientConnection: PeerChannel {
    public struct Configuration: Sendable {
        public var connectTimeout: TimeAmount = .seconds(2)
        public var initialBackoff: TimeAmount = .milliseconds(100)
        public var maximumBackoff: TimeAmount = .seconds(5)
        public var backoffMultiplier: Double = 1.6
        public var maxResponseMessageBytes: Int = 64 << 20
        /// Headers sent on every call (a node sends the cluster credential to its peers).
        public var extraHeaders: [(name: String, value: String)] = []
        /// How long past a call's deadline the client keeps waiting for the server's own
        /// `DEADLINE_EXCEEDED` before it fails the call itself (0: it fails it at the deadline).
        public var deadlineSlack: TimeAmount = .zero
        /// Whether cancelling the calling task ends a call at once with `CANCELLED` (its stream
        /// reset). Off, a call runs to its answer or deadline whatever its task does: a node's
        /// replication drains finish while the node shuts down.
        public var endsCallsOnTaskCancellation = false
        /// The local address the connection is made from (nil: the kernel picks one). A node
        /// makes its peer connections from the address it listens on, so its peers see it
        /// there (and a firewall rule naming that address cuts it off both ways).
        public var localAddress: SocketAddress?
        /// Connect over TLS; nil: plaintext (h2c).
        public var tls: ClientTLS?
        public init() {}
    }

    private struct Connected: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<ClientConnectionHandler>
    }

    private enum State {
        case idle(failures: Int)
        case connecting(EventLoopFuture<Connected>, failures: Int)
        case ready(Connected)
        case backingOff(until: NIODeadline, error: RPCError, failures: Int)
        case closed
    }

    public let host: String
    public let port: Int
    private let configuration: Configuration
    private let group: any EventLoopGroup
    /// The event loops this connection runs on.
    public var eventLoopGroup: any EventLoopGroup { group }
    private let state = Mutex(State.idle(failures: 0))

    public init(host: String, port: Int, eventLoopGroup: any EventLoopGroup, configuration: Configuration = .init()) {
        self.host = host
        self.port = port
        self.group = eventLoopGroup
        self.configuration = configuration
    }

    /// Calls a unary method; `timeout` becomes the call's deadline (sent as `grpc-timeout`).
    /// With `probeAfter`, a call still unanswered by then asks the server with a PING whether
    /// it is alive, and fails with `UNAVAILABLE` (``RPCError/peerSilent``) when the PING's
    /// answer does not come within as long again (the server is paused or cut off).
    public func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, timeout: Duration? = nil,
        probeAfter: Duration? = nil
    ) async throws -> Response {
        let payload = try encode(request)
        let bytes = try await unary(path: method.path, payload: payload, timeout: timeout, probeAfter: probeAfter)
        do {
            return try Response(serializedBytes: bytes)
        } catch {
            throw RPCError(.internalError, "\(host):\(port) sent an invalid \(Response.protoMessageName): \(error)")
        }
    }

    /// Calls a unary method and hands the outcome to `completion` (once, on the connection's
    /// event loop, or here when no connection could be had): no task and no continuation, for
    /// a server handler that relays a call (a node forwarding to the key's coordinator).
    /// `writesAtOnce`: the call goes on the wire now rather than with the rest of the tick's
    /// calls (for a call that carries many, such as a batch of relayed gets).
    public func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, timeout: Duration? = nil, writesAtOnce: Bool = false,
        completion: @escaping @Sendable (Result<Response, RPCError>) -> Void
    ) {
        let payload: [UInt8]
        do { payload = try encode(request) } catch { return completion(.failure(error)) }
        let call = CallCancellation()
        let (host, port) = (self.host, self.port)
        _ = call.attach { result in
            completion(result.mapError { error in
                error as? RPCError ?? RPCError(.internalError, "\(error)")
            }.flatMap { bytes in
                do {
                    return .success(try Response(serializedBytes: bytes))
                } catch {
                    return .failure(RPCError(.internalError, "\(host):\(port) sent an invalid \(Response.protoMessageName): \(error)"))
                }
            })
        }
        start(path: method.path, payload: payload, limits: CallLimits(timeoutNanoseconds: timeout?.wholeNanoseconds, writesAtOnce: writesAtOnce),
              attemptsLeft: 3, call: call)
    }

    /// Calls a unary method with an already serialized request; returns the serialized response.
    ///
    /// With ``Configuration/endsCallsOnTaskCancellation``, cancelling the calling task ends the
    /// call at once with `CANCELLED` (the stream is reset).
    public func unary(path: String, payload: [UInt8], timeout: Duration? = nil, probeAfter: Duration? = nil) async throws -> [UInt8] {
        let limits = CallLimits(timeoutNanoseconds: timeout?.wholeNanoseconds, probeAfterNanoseconds: probeAfter?.wholeNanoseconds)
        guard configuration.endsCallsOnTaskCancellation else {
            return try await withCheckedThrowingContinuation { continuation in
                let call = CallCancellation()
                _ = call.attach { continuation.resume(with: $0) }
                start(path: path, payload: payload, limits: limits, attemptsLeft: 3, call: call)
            }
        }
        let call = CallCancellation()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard call.attach({ continuation.resume(with: $0) }) else { return }
                start(path: path, payload: payload, limits: limits, attemptsLeft: 3, call: call)
            }
        } onCancel: {
            call.cancel()
        }
    }

    /// ``PeerChannel``'s call: a serialized request, the outcome to `completion` once.
    public func call(path: String, payload: [UInt8], timeout: Duration?, writesAtOnce: Bool,
                     completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) {
        let call = CallCancellation()
        _ = call.attach { result in completion(result.mapError { $0 as? RPCError ?? RPCError(.internalError, "\($0)") }) }
        start(path: path, payload: payload, limits: CallLimits(timeoutNanoseconds: timeout?.wholeNanoseconds, writesAtOnce: writesAtOnce),
              attemptsLeft: 3, call: call)
    }

    /// How long a call may take (`grpc-timeout`), when it asks whether the server is alive,
    /// and whether it is written at once.
    private struct CallLimits: Sendable {
        var timeoutNanoseconds: Int64?
        var probeAfterNanoseconds: Int64?
        var writesAtOnce = false
    }

    /// Starts the call on the connection's event loop; `call` hears the outcome once, on that
    /// loop (or here, when no connection could be had). A call the connection refused to start
    /// was not sent, so it goes out again on a new connection, up to `attemptsLeft` times in all.
    private func start(path: String, payload: [UInt8], limits: CallLimits, attemptsLeft: Int, call: CallCancellation) {
        withReadyConnection { [self] ready in
            let connected: Connected
            switch ready {
            case .success(let ready): connected = ready
            case .failure(let error): return call.finish(.failure(error))
            }
            let begin: @Sendable () -> Void = {
                if call.isOver { return }
                let streamID = connected.handler.value.startCall(path: path, payload: payload, timeoutNanoseconds: limits.timeoutNanoseconds,
                                                                 probeAfterNanoseconds: limits.probeAfterNanoseconds,
                                                                 writesAtOnce: limits.writesAtOnce) { result in
                    guard case .failure(let error) = result, error is CallNotStarted else { return call.finish(result) }
                    // The connection was closing, so nothing was sent: the call may go out on a new one.
                    self.connectionBecameUnusable(connected.channel)
                    guard attemptsLeft > 1 else {
                        return call.finish(.failure(RPCError(.unavailable,
                            "connection to \(self.host):\(self.port) kept closing before the call could start", neverSent: true)))
                    }
                    self.start(path: path, payload: payload, limits: limits, attemptsLeft: attemptsLeft - 1, call: call)
                }
                if let streamID, !call.started(on: connected.handler, streamID: streamID) {
                    connected.handler.value.cancel(streamID: streamID)
                }
            }
            if connected.handler.eventLoop.inEventLoop { begin() } else { connected.handler.eventLoop.execute(begin) }
        }
    }

    /// Closes the connection; later calls fail with `UNAVAILABLE`.
    public func close() async {
        try? await markClosed()?.close()
    }

    /// Closes the connection without waiting for it to close; later calls fail with
    /// `UNAVAILABLE` and never connect.
    public func shutDown() {
        markClosed()?.close(promise: nil)
    }

    /// Marks the connection closed; returns its channel, if it was open.
    private func markClosed() -> (any Channel)? {
        state.withLock { state in
            defer { state = .closed }
            if case .ready(let connected) = state { return connected.channel }
            return nil
        }
    }

    private enum NextStep {
        case use(Connected)
        case wait(EventLoopFuture<Connected>)
        case connect(EventLoopPromise<Connected>, failures: Int)
        case fail(RPCError)
    }

    /// Hands `body` the open connection, once there is one (or why there is none).
    private func withReadyConnection(_ body: @escaping @Sendable (Result<Connected, any Error>) -> Void) {
        let step: NextStep = state.withLock { state in
            switch state {
            case .ready(let connected):
                return .use(connected)
            case .connecting(let future, _):
                return .wait(future)
            case .backingOff(let until, let error, let failures):
                if NIODeadline.now() < until { return .fail(error) }
                let promise = group.next().makePromise(of: Connected.self)
                state = .connecting(promise.futureResult, failures: failures)
                return .connect(promise, failures: failures)
            case .idle(let failures):
                let promise = group.next().makePromise(of: Connected.self)
                state = .connecting(promise.futureResult, failures: failures)
                return .connect(promise, failures: failures)
            case .closed:
                return .fail(RPCError(.unavailable, "connection to \(host):\(port) was closed by this client", neverSent: true))
            }
        }
        switch step {
        case .use(let connected):
            body(.success(connected))
        case .wait(let future):
            future.whenComplete(body)
        case .fail(let error):
            body(.failure(error))
        case .connect(let promise, let failures):
            connect(promise, failures: failures)
            promise.futureResult.whenComplete(body)
        }
    }

    private func connect(_ promise: EventLoopPromise<Connected>, failures: Int) {
        let authority = "\(host):\(port)"
        let maxResponse = configuration.maxResponseMessageBytes
        let extraHeaders = configuration.extraHeaders
        let slack = configuration.deadlineSlack
        let tls = configuration.tls
        let serverHostname = ClientTLS.serverHostname(host)
        // The handler goes in before the connection opens: bytes read before it was added
        // (the server's SETTINGS) would be lost and the session would fail.
        var bootstrap = ClientBootstrap(group: promise.futureResult.eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname))
                    }
                    // A strong reference (a weak one would slow every retain of `self`); the cycle
                    // ends when the channel closes and its pipeline lets go of the handler.
                    let handler = ClientConnectionHandler(authority: authority, maxResponseMessageBytes: maxResponse,
                                                          extraHeaders: extraHeaders, deadlineSlack: slack) {
                        [self, channel] in self.connectionBecameUnusable(channel)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        if let localAddress = configuration.localAddress {
            // IP_BIND_ADDRESS_NO_PORT (24 in <linux/in.h>): the port is chosen at connect, with the
            // destination known, rather than one reserved per socket at bind.
            bootstrap = bootstrap.channelOption(.ipOption(.init(rawValue: 24)), value: 1).bind(to: localAddress)
        }
        bootstrap.connect(host: host, port: port)
            .flatMapThrowing { channel -> Connected in
                let handler = try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
                return Connected(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }
            .whenComplete { [self] result in
                switch result {
                case .success(let connected):
                    let keep = self.state.withLock { state -> Bool in
                        if case .closed = state { return false }
                        state = .ready(connected)
                        return true
                    }
                    if keep {
                        promise.succeed(connected)
                    } else {
                        connected.channel.close(promise: nil)
                        promise.fail(RPCError(.unavailable, "connection to \(authority) was closed by this client"))
                    }
                case .failure(let error):
                    let rpcError = RPCError(.unavailable, "cannot connect to \(authority): \(Self.describe(connectError: error))",
                                            neverSent: true)
                    let delay = self.backoff(afterFailures: failures + 1)
                    self.state.withLock { state in
                        if case .closed = state { return }
                        state = .backingOff(until: .now() + delay, error: rpcError, failures: failures + 1)
                    }
                    promise.fail(rpcError)
                }
            }
    }

    /// The connection on `channel` takes no new calls: the next call opens a new one.
    private func connectionBecameUnusable(_ channel: any Channel) {
        state.withLock { state in
            if case .ready(let connected) = state, connected.channel === channel {
                state = .idle(failures: 0)
            }
        }
    }

    private func backoff(afterFailures failures: Int) -> TimeAmount {
        let base = Double(configuration.initialBackoff.nanoseconds)
            * pow(configuration.backoffMultiplier, Double(max(failures - 1, 0)))
        let capped = min(base, Double(configuration.maximumBackoff.nanoseconds))
        let jittered = capped * Double.random(in: 0.8...1.2)
        return .nanoseconds(Int64(jittered))
    }

    /// The root cause of a failed connect in a few words (`Connection refused`).
    private static func describe(connectError error: any Error) -> String {
        var root: any Error = error
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            root = first.error
        } else if let connection = error as? NIOConnectionError, let dns = connection.dnsAAAAError ?? connection.dnsAError {
            root = dns
        }
        if let io = root as? IOError { return String(cString: strerror(io.errnoCode)) }
        if root is ChannelError, case .connectTimeout = root as! ChannelError { return "connect timed out" }
        return "\(root)"
    }
}
