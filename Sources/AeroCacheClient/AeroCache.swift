import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The AeroCache client for Swift services: each call goes straight to a replica of its key.
///
/// The client learns the cluster's members and ring from any of its seeds (`Admin/Ring`),
/// computes every key's replicas with the nodes' own ring code, and sends the call to the
/// first replica that takes calls, which runs it without forwarding. It keeps the ring fresh:
/// every `topologyRefreshInterval`, and at once when a node answers that it had to forward
/// the call (its answer carries its ring epoch). When a node cannot be reached it moves down
/// the key's preference list; a call that may have run already is sent again only when
/// running it twice is harmless (reads, `set`, `delete`, `touch`), never an `increment`. (A
/// `set` sent again carries a new timestamp, so it may overwrite a write another client made in
/// between; a `delete` sent again answers `false`.)
///
/// ```swift
/// let cache = try AeroCache(seeds: "10.0.0.1:7400", "10.0.0.2:7400")
/// try await cache.set("session:42", "alice", ttl: .seconds(1800))
/// let user: String? = try await cache.get("session:42", as: String.self)
/// let hits = try await cache.increment("rate:203.0.113.9", ttl: .seconds(60))
/// ```
///
/// Run it as a swift-service-lifecycle `Service` (its `run()` refreshes the ring in the
/// background and closes the connections on graceful shutdown), or call ``close()`` when done.
/// Every failure is thrown as an ``AeroCacheError``.
public final class AeroCache: Service, Sendable {
    /// How the client finds and calls the cluster.
    public struct Configuration: Sendable {
        /// Nodes to learn the cluster from (any member will do).
        public var seeds: [HostPort]
        /// Deadline of each call, over all the nodes it tries.
        public var timeout: Duration = .seconds(5)
        /// How long a call that may run twice (not an `increment`) waits for a node's answer
        /// before it asks, with an HTTP/2 PING, whether the node is alive. A node that does
        /// not answer the PING within as long again is paused or cut off (its connection stays
        /// open and says nothing): the call goes to the next replica, and the node is tried
        /// last for a while. A node that answers the PING is busy: the call waits for it.
        /// Zero or less: never ask.
        public var attemptTimeout: Duration = .milliseconds(500)
        /// How often the ring is fetched again while calls run (a forwarded call refreshes it at once).
        public var topologyRefreshInterval: Duration = .seconds(2)
        /// HTTP/2 connections to each node (calls are multiplexed on them).
        public var connectionsPerNode = 1
        /// Whether to send each call to its key's replicas (false: to the seeds, in turn, which
        /// forward it, as a client that does not route would).
        public var routesToReplicas = true
        /// How typed values that are neither text nor bytes are stored.
        public var valueCoder: any CacheValueCoder = JSONValueCoder()
        /// Sent with every call as `authorization: Bearer TOKEN`, for nodes started with
        /// `--auth-token-file`; nil: no token.
        public var token: String?
        /// TLS to the nodes (`ClientTLS(trustedCA: "ca.pem")`); nil: plaintext.
        public var tls: ClientTLS?

        public init(seeds: [HostPort]) {
            self.seeds = seeds
        }
    }

    public let configuration: Configuration
    /// The seeds as `host:port`, made once (calls fall back to them).
    private let seedAddresses: [String]
    let connections: NodeConnections
    let logger: Logger
    private let topology = Mutex(TopologyState())
    private let seedTurn = Atomic<Int>(0)
    /// Nodes that answered neither a call nor a PING, tried last for a while.
    let passedOver = PassedOver()
    let loads = SingleFlight<[UInt8]?>()

    /// What the client knows of the ring, and when it last asked.
    struct TopologyState {
        var current: Topology?
        var refreshedAt: UInt64 = 0
        var refreshing = false
    }

    /// A client of the cluster reachable through `configuration.seeds`; connections open on
    /// the first call, on `eventLoopGroup`.
    public init(configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "aerocache.client")) {
        precondition(!configuration.seeds.isEmpty, "an AeroCache client needs at least one seed")
        self.configuration = configuration
        self.seedAddresses = configuration.seeds.map(\.description)
        self.logger = logger
        var connection = GRPCClientConnection.Configuration()
        connection.connectTimeout = .milliseconds(500)
        connection.endsCallsOnTaskCancellation = true
        connection.tls = configuration.tls
        if let token = configuration.token { connection.extraHeaders = [("authorization", "Bearer \(token)")] }
        self.connections = NodeConnections(group: eventLoopGroup, perNode: configuration.connectionsPerNode,
                                           configuration: connection)
    }

    /// A client with the default configuration for seeds given as `host:port`.
    public convenience init(seeds: String...) throws {
        var parsed: [HostPort] = []
        for seed in seeds {
            do { parsed.append(try HostPort(parsing: seed)) } catch {
                throw AeroCacheError(.invalidArgument, "seed \(seed): \(error.message)")
            }
        }
        guard !parsed.isEmpty else { throw AeroCacheError(.invalidArgument, "an AeroCache client needs at least one seed") }
        self.init(configuration: Configuration(seeds: parsed))
    }

    // MARK: Service

    /// Fetches the ring, keeps it fresh until graceful shutdown (or cancellation), then closes
    /// the connections. Calls made after that fail with `UNAVAILABLE`.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Not while a refresh a call started runs (it may be asking the node that forwarded).
                let idle = self.topology.withLock { state -> Bool in
                    if state.refreshing { return false }
                    state.refreshing = true
                    return true
                }
                if idle {
                    do {
                        try await self.refreshTopology()
                    } catch {
                        self.logger.warning("cannot fetch the ring: \("\(error)")")
                    }
                    self.topology.withLock { $0.refreshing = false }
                }
                try await Task.sleep(for: self.configuration.topologyRefreshInterval)
            }
        }
        await close()
    }

    /// Closes every connection.
    public func close() async {
        await connections.closeAll()
    }

    // MARK: Topology

    /// Fetches the ring now from a member (or a seed); throws when none answers.
    public func refreshTopology() async throws {
        try await refreshTopology(from: nil)
    }

    /// Fetches the ring from `first` when given (a node that just forwarded a call: its view
    /// is the newer one), else from a member that takes calls, then the others, then the seeds.
    func refreshTopology(from first: String?) async throws {
        let known = topology.withLock { $0.current }
        var candidates = first.map { [$0] } ?? []
        if let known {
            let serving = known.addresses.indices.filter { known.serving[$0] }.map { known.addresses[$0] }.shuffled()
            candidates += serving + known.addresses.filter { !serving.contains($0) }
        }
        for seed in seedAddresses where !candidates.contains(seed) { candidates.append(seed) }
        var lastError: (any Error)?
        for address in candidates.prefix(6) {
            do {
                let answer = try await connections.connection(to: address)
                    .unary(AdminMethods.ring, Aerocache_V1_RingRequest(), timeout: .seconds(1))
                let fresh = Topology(answer)
                // A node without tokens yet (joining, restarting) knows no ring: ask another.
                guard !fresh.isEmpty else { continue }
                adopt(fresh)
                return
            } catch {
                lastError = error
            }
        }
        topology.withLock { $0.refreshedAt = MonotonicClock.nanoseconds() }
        throw AeroCacheError(.unavailable, "no node answered for the ring: \(lastError.map { "\($0)" } ?? "none holds one yet")",
                             cause: lastError as? RPCError)
    }

    /// The ring epoch the client routes by (0 before it learned one).
    public var ringEpoch: Int64 { topology.withLock { $0.current?.epoch ?? 0 } }

    /// Routes by `fresh` from now on. Epochs fingerprint the member set (they are not ordered),
    /// so the newest answer wins; a forwarded call makes the client ask the node that forwarded.
    private func adopt(_ fresh: Topology) {
        let changed = topology.withLock { state -> Bool in
            let changed = state.current?.epoch != fresh.epoch || state.current?.serving != fresh.serving
            state.current = fresh
            state.refreshedAt = MonotonicClock.nanoseconds()
            return changed
        }
        if changed {
            logger.info("routing by ring epoch \("\(fresh.epoch)"): \("\(fresh.addresses.count)") members, \("\(fresh.serving.filter { $0 }.count)") taking calls")
        }
    }

    /// The ring to route by; starts a refresh in the background when it is due (or at once
    /// when `forwardedBy` names a node that had to forward a call), at most one at a time.
    func routingTopology(forwardedBy: String? = nil) async -> Topology? {
        let interval = UInt64(max(0, configuration.topologyRefreshInterval.wholeNanoseconds))
        let (current, due) = topology.withLock { state -> (Topology?, Bool) in
            let now = MonotonicClock.nanoseconds()
            let age = now > state.refreshedAt ? now - state.refreshedAt : 0
            let minimumGap: UInt64 = forwardedBy != nil ? 50_000_000 : interval
            let due = !state.refreshing && (state.current == nil || age >= minimumGap)
            if due { state.refreshing = true }
            return (state.current, due)
        }
        guard due else { return current }
        if current == nil {
            // The first call waits for the ring (the seeds forward if none answers).
            try? await refreshTopology(from: forwardedBy)
            topology.withLock { $0.refreshing = false }
            return topology.withLock { $0.current }
        }
        Task {
            try? await self.refreshTopology(from: forwardedBy)
            self.topology.withLock { $0.refreshing = false }
        }
        return current
    }

    // MARK: Calls

    /// Whether a call that reached a node (and may have run) may be sent to another.
    enum Retry {
        /// Running it twice does no harm: reads, set, delete, touch.
        case idempotent
        /// Only when it never left this process: increment.
        case ifNeverSent
    }

    /// Where a call on `key` goes, in order.
    func targets(forKey key: String) async -> [String] {
        let seeds = seedAddresses
        guard configuration.routesToReplicas, let topology = await routingTopology(), !topology.isEmpty else {
            let first = seedTurn.add(1, ordering: .relaxed).oldValue % seeds.count
            return Array(seeds[first...] + seeds[..<first])
        }
        var targets = topology.targets(forKey: key)
        // Last, a seed: members may advertise addresses this client cannot reach.
        if let seed = seeds.first(where: { !targets.contains($0) }) { targets.append(seed) }
        return targets
    }

    /// Sends `request` to the first of `targets` that answers; refreshes the ring when the
    /// node that answered had to forward the call.
    func call<Request, Response: EpochStamped>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, to targets: [String], retry: Retry
    ) async throws(AeroCacheError) -> Response {
        let (response, address) = try await send(method, request, to: targets, retry: retry)
        if response.ringEpoch != 0 && configuration.routesToReplicas { _ = await routingTopology(forwardedBy: address) }
        return response
    }

    /// Sends `request` to the first of `targets` that answers, within the call's deadline;
    /// returns the answer and who gave it. A call that may run twice moves on from a node that
    /// answers neither it nor a PING (``Configuration/attemptTimeout``).
    func send<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, to targets: [String], retry: Retry
    ) async throws(AeroCacheError) -> (Response, String) {
        let deadline = MonotonicClock.nanoseconds() &+ UInt64(max(0, configuration.timeout.wholeNanoseconds))
        let attempts = passedOver.order(targets).prefix(4)
        let probeAfter = retry == .idempotent && configuration.attemptTimeout > .zero
            ? configuration.attemptTimeout : nil
        var lastError = RPCError(.unavailable, "no node to call", neverSent: true)
        // Whether an attempt may have reached a node (and run there): then the call's error
        // must not say it was never sent, whatever the last attempt's says.
        var maybeRan = false
        func failure(_ error: RPCError) -> AeroCacheError {
            var error = error
            if maybeRan { error.neverSent = false }
            return AeroCacheError(error)
        }
        for (attempt, address) in attempts.enumerated() {
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else {
                throw AeroCacheError(.deadlineExceeded, "no answer within \(configuration.timeout) (last: \(lastError.message))",
                                     cause: maybeRan ? RPCError(lastError.code, lastError.message) : lastError)
            }
            // A first attempt sends the configured timeout as it is: one `grpc-timeout` value on
            // every call stays in HPACK's table, where a new value each call would evict it.
            let timeout = attempt == 0 ? configuration.timeout : .nanoseconds(Int64(deadline - now))
            // The last node tried gets the rest of the deadline, silent or not.
            let probe = attempt < attempts.count - 1 ? probeAfter : nil
            do {
                let response = try await connections.connection(to: address).unary(method, request, timeout: timeout, probeAfter: probe)
                passedOver.answered(address)
                return (response, address)
            } catch let error as RPCError {
                if !error.neverSent { maybeRan = true }
                if Task.isCancelled || error.code == .cancelled {
                    throw AeroCacheError(.cancelled, "the call was cancelled by its caller", cause: failure(error).cause)
                }
                if error.peerSilent { passedOver.passOver(address) }
                let mayRetry = error.neverSent || (retry == .idempotent && error.code == .unavailable)
                guard mayRetry else { throw failure(error) }
                logger.debug("\(address) failed, trying the next replica: \(error)")
                lastError = error
            } catch let error as AeroCacheError where error.code == .invalidArgument {
                lastError = RPCError(.unavailable, error.message, neverSent: true)  // a bad address: try the next
            } catch let error as AeroCacheError {
                throw error
            } catch {
                throw AeroCacheError(.internalError, "\(error)")
            }
        }
        throw failure(lastError)
    }
}
