import AeroCacheRPC
import Logging
import NIOCore
import NIOSSL
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A gRPC server (h2c with prior knowledge) answering unary ``ServerMethod``s.
///
/// ```swift
/// let server = GRPCServer(configuration: .init(host: "127.0.0.1", port: 7400),
///                         methods: [ServerMethod(Cache.get) { request, _ in .now(...) }],
///                         eventLoopGroup: group, logger: logger)
/// try await server.run()          // returns after initiateGracefulShutdown() completes
/// ```
///
/// Graceful shutdown stops accepting, sends GOAWAY on every connection, lets in-flight calls
/// finish, and force-closes what is left after ``Configuration/shutdownGracePeriod``.
public final class GRPCServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// The port to listen on; 0 picks a free one (read it from ``localAddress``).
        public var port: Int
        /// Largest request message accepted; larger ones get `RESOURCE_EXHAUSTED` before buffering.
        public var maxRequestMessageBytes: Int
        public var maxConcurrentStreams: UInt32
        /// How long graceful shutdown waits for in-flight calls before closing connections.
        public var shutdownGracePeriod: TimeAmount
        /// Bytes of large requests and unsent answers one connection may hold (at least two of
        /// the largest requests); past it, large requests wait for their window and completed
        /// calls wait to run (a client that does not read its answers waits; nothing grows).
        public var maxHeldBytesPerConnection: Int
        /// The same, for all connections together.
        public var maxHeldBytes: Int
        /// Connections open at once; more are closed as they come.
        public var maxConnections: Int
        /// Recognises calls from other cluster members; nil: none is.
        public var peerCredential: PeerCredential?
        /// A large request given the window for its whole message has this long, plus its
        /// size at 1 MiB/s, to send it; later it is answered `DEADLINE_EXCEEDED` (its share of
        /// the budget goes to the next).
        public var requestBodyGrace: TimeAmount = .seconds(10)
        /// Serve over TLS; nil: plaintext (h2c).
        public var tls: ServerTLS?
        /// Tokens calls must carry (`authorization: Bearer TOKEN`); nil: calls need none.
        public var tokens: TokenRegistry?

        public init(host: String = "127.0.0.1", port: Int = 7400, maxRequestMessageBytes: Int = 4 << 20,
                    maxConcurrentStreams: UInt32 = 1024, shutdownGracePeriod: TimeAmount = .seconds(10),
                    maxHeldBytesPerConnection: Int = 8 << 20, maxHeldBytes: Int = 256 << 20,
                    maxConnections: Int = 10_000, peerCredential: PeerCredential? = nil) {
            self.host = host
            self.port = port
            self.maxRequestMessageBytes = maxRequestMessageBytes
            self.maxConcurrentStreams = maxConcurrentStreams
            self.shutdownGracePeriod = shutdownGracePeriod
            self.maxHeldBytesPerConnection = maxHeldBytesPerConnection
            self.maxHeldBytes = maxHeldBytes
            self.maxConnections = maxConnections
            self.peerCredential = peerCredential
        }
    }

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var isShuttingDown = false
        /// The listener was closed and the connections told to finish (once).
        var shutdownBegun = false
        /// The shutdown scheduled all it schedules on the loops: the server may finish now
        /// (its owner may then shut the loops down, and scheduling on them would fail).
        var shutdownArmed = false
    }

    private let configuration: Configuration
    private let router: ServerRouter
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let address: EventLoopPromise<SocketAddress>
    /// Asynchronous handlers to run, one queue per event loop: a queue's consumer runs on its
    /// loop, so handing a call over wakes no other thread (one shared queue, consumed on the
    /// global executor, cost two thread hops per call).
    private let queues: [ObjectIdentifier: JobQueue]

    private struct JobQueue {
        let executor: EventLoopTaskExecutor
        let jobs: AsyncStream<ServerJob>
        let continuation: AsyncStream<ServerJob>.Continuation
    }

    public init(configuration: Configuration, methods: [ServerMethod], eventLoopGroup: any EventLoopGroup,
                logger: Logger = Logger(label: "aerocache.transport")) {
        self.configuration = configuration
        self.router = ServerRouter(methods)
        self.group = eventLoopGroup
        self.logger = logger
        self.address = eventLoopGroup.next().makePromise()
        var queues: [ObjectIdentifier: JobQueue] = [:]
        for loop in eventLoopGroup.makeIterator() {
            let (jobs, continuation) = AsyncStream.makeStream(of: ServerJob.self)
            queues[ObjectIdentifier(loop as AnyObject)] = JobQueue(executor: EventLoopTaskExecutor(eventLoop: loop), jobs: jobs,
                                                                   continuation: continuation)
        }
        self.queues = queues
    }

    /// The queue of jobs for connections on `loop`.
    private func jobs(on loop: any EventLoop) -> AsyncStream<ServerJob>.Continuation {
        // Every connection is on one of the group's loops; any queue would do otherwise.
        (queues[ObjectIdentifier(loop as AnyObject)] ?? queues.values.first!).continuation
    }

    private func finishJobs() {
        for queue in queues.values { queue.continuation.finish() }
    }

    /// The address the server listens on, once bound.
    public var localAddress: SocketAddress {
        get async throws { try await address.futureResult.get() }
    }

    /// For a server whose ``run()`` will never be called (its owner failed before): anyone
    /// awaiting ``localAddress`` gets `error`. Call it while the event loops still run.
    public func abandon(because error: any Error) {
        address.fail(error)
        finishJobs()
    }

    /// Binds, then serves until a graceful shutdown has completed.
    public func run() async throws {
        let settings = ServerConnectionHandler.Settings(
            maxRequestMessageBytes: configuration.maxRequestMessageBytes,
            maxConcurrentStreams: configuration.maxConcurrentStreams,
            // What any stream may send before its size is known: larger messages wait for
            // window until the connection's budget has room for them.
            initialWindowSize: 16 << 10,
            connectionWindowSize: Int32(clamping: max(1 << 20, configuration.maxHeldBytesPerConnection)),
            // At least two of the largest requests, so that one always fits beside another.
            maxHeldBytes: max(configuration.maxHeldBytesPerConnection, 2 * configuration.maxRequestMessageBytes + 64 * 1024),
            total: HeldBytes(limit: configuration.maxHeldBytes),
            peerCredential: configuration.peerCredential,
            tokens: configuration.tokens,
            requestBodyGrace: configuration.requestBodyGrace)
        let listener: any Channel
        do {
            listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] channel in
                    self.register(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        if let tls = self.configuration.tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                        }
                        try channel.pipeline.syncOperations.addHandler(FirstBytesDeadline())
                        try channel.pipeline.syncOperations.addHandler(ServerConnectionHandler(
                            router: self.router, settings: settings, jobs: self.jobs(on: channel.eventLoop), logger: self.logger))
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            let failure = ListenError(message: "cannot listen on \(configuration.host):\(configuration.port): \(reason)")
            address.fail(failure)
            finishJobs()
            throw failure
        }
        let shutDownAlready = state.withLock { state in
            state.listener = listener
            return state.isShuttingDown
        }
        address.succeed(listener.localAddress!)
        logger.info("gRPC server listening", metadata: ["address": "\(listener.localAddress!)"])
        if shutDownAlready { initiateGracefulShutdown() }

        // Asynchronous handlers run on their connection's event loop: a call that awaits peers
        // and answers never changes threads (see EventLoopTaskExecutor).
        await withDiscardingTaskGroup { group in
            for queue in queues.values {
                group.addTask(executorPreference: queue.executor) {
                    await withDiscardingTaskGroup { calls in
                        for await job in queue.jobs { calls.addTask(executorPreference: queue.executor, operation: job.work) }
                    }
                }
            }
        }
        try? await listener.closeFuture.get()
    }

    /// Stops accepting, lets in-flight calls finish, then makes ``run()`` return. Once: later
    /// calls (after the server stopped, too) do nothing.
    public func initiateGracefulShutdown() {
        let (listener, connections) = state.withLock { state -> ((any Channel)?, [any Channel]) in
            state.isShuttingDown = true
            // Not bound yet: run() finishes the job once bound. Begun already: nothing to do.
            guard let listener = state.listener, !state.shutdownBegun else { return (nil, []) }
            state.shutdownBegun = true
            return (listener, Array(state.connections.values))
        }
        guard let listener else { return }
        listener.close(promise: nil)
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ServerConnectionHandler.GracefulShutdownEvent())
        }
        let grace = configuration.shutdownGracePeriod
        group.next().scheduleTask(in: grace) { [self] in
            let stragglers = self.state.withLock { Array($0.connections.values) }
            for connection in stragglers { connection.close(promise: nil) }
        }
        state.withLock { $0.shutdownArmed = true }
        finishIfIdle()
    }

    /// Connections open now (clients and peers).
    public var openConnections: Int { state.withLock { $0.connections.count } }

    private func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let refuse = state.withLock { state in
            if state.isShuttingDown || state.connections.count >= configuration.maxConnections { return true }
            state.connections[id] = channel
            return false
        }
        if refuse {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            self.state.withLock { _ = $0.connections.removeValue(forKey: id) }
            self.finishIfIdle()
        }
    }

    private func finishIfIdle() {
        let done = state.withLock { $0.shutdownArmed && $0.listener != nil && $0.connections.isEmpty }
        if done { finishJobs() }
    }
}

/// The server could not bind its address.
public struct ListenError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// An asynchronous handler's work and the event loop of the connection it answers on.
struct ServerJob: Sendable {
    let eventLoop: any EventLoop
    let work: @Sendable () async -> Void
}
