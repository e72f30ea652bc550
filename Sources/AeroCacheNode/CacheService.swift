import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import CoreMetrics
import Foundation

/// The `aerocache.v1.Cache` service on one node: validates each call, then runs it.
///
/// On a one-node cluster every method runs on the connection's event loop without a thread
/// hop. In a cluster, a read at consistency `one` is served locally when this node holds a
/// replica of the key; everything else goes through the ``Coordinator`` (forwarded, or
/// written here and replicated).
public struct CacheService: Sendable {
    /// Most keys one batch call may carry.
    public static let maxBatchKeys = 1000

    public let store: StorageEngine
    public let limits: Limits
    let coordinator: Coordinator?
    let metrics: NodeMetrics

    public init(store: StorageEngine, limits: Limits) {
        self.init(store: store, limits: limits, coordinator: nil, metrics: NodeMetrics())
    }

    init(store: StorageEngine, limits: Limits, coordinator: Coordinator?, metrics: NodeMetrics) {
        self.store = store
        self.limits = limits
        self.coordinator = coordinator
        self.metrics = metrics
    }

    /// The routed methods, for ``GRPCServer``. Only a peer's call may say it was `forwarded`:
    /// from anyone else the flag is ignored.
    public var methods: [ServerMethod] {
        [
            ServerMethod(CacheMethods.get, permission: .role(.read)) { request, context throws(RPCError) in
                try measured(.get, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try get(Self.peerOnly(request, context)) }
            },
            ServerMethod(CacheMethods.set, permission: .role(.write)) { request, context throws(RPCError) in
                try measured(.set, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try set(Self.peerOnly(request, context), deadline: context.deadline) }
            },
            ServerMethod(CacheMethods.delete, permission: .role(.write)) { request, context throws(RPCError) in
                try measured(.delete, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try delete(Self.peerOnly(request, context), deadline: context.deadline) }
            },
            ServerMethod(CacheMethods.has, permission: .role(.read)) { request, context throws(RPCError) in
                try measured(.has, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try has(Self.peerOnly(request, context)) }
            },
            ServerMethod(CacheMethods.increment, permission: .role(.write)) { request, context throws(RPCError) in
                try measured(.increment, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try increment(Self.peerOnly(request, context)) }
            },
            ServerMethod(CacheMethods.touch, permission: .role(.write)) { request, context throws(RPCError) in
                try measured(.touch, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try touch(Self.peerOnly(request, context)) }
            },
            ServerMethod(CacheMethods.batchGet, permission: .role(.read), limiting: RepeatedLimit(field: 1, limit: Self.maxBatchKeys, name: "keys")) { request, context throws(RPCError) in
                try measured(.batchGet, forwarded: request.forwarded && context.isPeer) { () throws(RPCError) in try batchGet(Self.peerOnly(request, context)) }
            },
            ServerMethod(CacheMethods.batchSet, permission: .role(.write), limiting: RepeatedLimit(field: 1, limit: Self.maxBatchKeys, name: "entries")) { request, context throws(RPCError) in
                try measured(.batchSet) { () throws(RPCError) in try batchSet(request, fromPeer: context.isPeer, deadline: context.deadline) }
            },
        ]
    }

    /// `request` with its `forwarded` flag cleared unless a cluster member sent it.
    private static func peerOnly<Request: ForwardableRequest>(_ request: Request, _ context: ServerCallContext) -> Request {
        guard request.forwarded && !context.isPeer else { return request }
        var cleared = request
        cleared.forwarded = false
        return cleared
    }

    /// Counts a call and records how long it took (to its answer, when that comes later). A
    /// call a peer `forwarded` was counted where it arrived: not again here.
    private func measured<Response>(_ op: NodeMetrics.Operation, forwarded: Bool = false,
                                    _ body: () throws(RPCError) -> Reply<Response>) throws(RPCError) -> Reply<Response> {
        if forwarded { return try body() }
        metrics.request(op)
        let start = NodeRuntime.monotonicNanoseconds()
        let reply: Reply<Response>
        do {
            reply = try body()
        } catch {
            metrics.answered(op, failure: error.code)
            throw error
        }
        switch reply {
        case .now:
            metrics.took(op, since: start)
            metrics.answered(op, failure: nil)
            return reply
        case .later(let work):
            let metrics = self.metrics
            return .later {
                defer { metrics.took(op, since: start) }
                do {
                    let response = try await work()
                    metrics.answered(op, failure: nil)
                    return response
                } catch {
                    metrics.answered(op, failure: (error as? RPCError)?.code ?? .internalError)
                    throw error
                }
            }
        case .callback(let begin):
            let metrics = self.metrics
            return .callback { completion in
                begin { result in
                    metrics.took(op, since: start)
                    if case .failure(let error) = result { metrics.answered(op, failure: error.code) } else { metrics.answered(op, failure: nil) }
                    completion(result)
                }
            }
        }
    }

    /// The coordinator and the current view, when this node is one of several; `UNAVAILABLE`
    /// until a joining node has joined (it would answer for a cluster it is not part of).
    private func cluster() throws(RPCError) -> (Coordinator, ClusterView)? {
        guard let coordinator else { return nil }
        let view = coordinator.cluster.view
        guard view.isJoined else {
            let seeds = coordinator.cluster.configuration.seeds
            throw RPCError(.unavailable, seeds.isEmpty
                ? "this node has not founded its cluster yet: it waits 3 s for members that may know it"
                : "this node has not joined its cluster yet (seeds: " + seeds.map(\.description).joined(separator: ",") + ")")
        }
        return view.isSingleNode ? nil : (coordinator, view)
    }

    // MARK: Reads

    func get(_ request: Aerocache_V1_GetRequest) throws(RPCError) -> Reply<Aerocache_V1_GetResponse> {
        try validate { () throws(InputError) in try limits.validate(key: request.key) }
        guard let (coordinator, view) = try cluster() else { return .now(lookup(request.key)) }
        let level = request.consistency.level(default: .one)
        if level == .one && view.holdsReplica(ofKey: request.key) { return .now(lookup(request.key)) }
        switch try coordinator.route(key: request.key, forwarded: request.forwarded, reading: true, view: view) {
        case .forward(let owner):
            let address = owner.address
            var forwarded = request
            forwarded.forwarded = true
            let call = forwarded
            let alone = coordinator.relay(CacheMethods.get, call, key: request.key, to: address, view: view) {
                try await self.get(call).value()
            }
            return try Reply<Aerocache_V1_GetResponse>.callback { completion in
                coordinator.forwardedGets.get(call, to: address, alone: alone, completion: completion)
            }.stamped(epoch: view.ring.epoch)
        case .local(let others, let count, let selfIsReplica):
            let needed = level.requiredFromOthers(of: count, selfIsReplica: selfIsReplica)
            return .later {
                let merged = try await coordinator.readMerged(key: request.key, others: others, needed: needed, view: view)
                guard let visible = merged?.visible(at: NodeRuntime.wallMillis()) else { return Aerocache_V1_GetResponse() }
                var response = Aerocache_V1_GetResponse()
                response.found = true
                response.value = Data(visible.value)
                response.metadata = visible.metadata
                response.expiresAtUnixMs = visible.expiresAtMillis
                return response
            }
        }
    }

    private func lookup(_ key: String) -> Aerocache_V1_GetResponse {
        store.read(key) { entry in
            var response = Aerocache_V1_GetResponse()
            response.found = true
            if let bytes = entry.value.baseAddress { response.value = Data(bytes: bytes, count: entry.value.count) }
            if entry.hasMetadata { response.metadata = entry.metadata }
            response.expiresAtUnixMs = entry.expiresAtMillis
            return response
        } ?? Aerocache_V1_GetResponse()
    }

    func has(_ request: Aerocache_V1_HasRequest) throws(RPCError) -> Reply<Aerocache_V1_HasResponse> {
        var get = Aerocache_V1_GetRequest()
        get.key = request.key
        get.forwarded = request.forwarded
        switch try self.get(get) {
        case .now(let response):
            return .now(Self.exists(response))
        case .later(let work):
            return .later { Self.exists(try await work()) }
        case .callback(let begin):
            return .callback { completion in begin { completion($0.map(Self.exists)) } }
        }
    }

    private static func exists(_ response: Aerocache_V1_GetResponse) -> Aerocache_V1_HasResponse {
        var reply = Aerocache_V1_HasResponse()
        reply.exists = response.found
        reply.ringEpoch = response.ringEpoch
        return reply
    }

    func batchGet(_ request: Aerocache_V1_BatchGetRequest) throws(RPCError) -> Reply<Aerocache_V1_BatchGetResponse> {
        try validate { () throws(InputError) in
            try validateBatchSize(request.keys.count)
            for key in request.keys { try limits.validate(key: key) }
        }
        if try cluster() == nil {
            var response = Aerocache_V1_BatchGetResponse()
            response.results = request.keys.map(lookup)
            try Self.checkAnswerSize(response.results)
            return .now(response)
        }
        let replies = try request.keys.map { key throws(RPCError) in
            var get = Aerocache_V1_GetRequest()
            get.key = key
            get.consistency = request.consistency
            get.forwarded = request.forwarded  // a peer's batch of gets it forwarded (ForwardedGets)
            return try self.get(get)
        }
        return .later {
            // The keys this node does not serve itself (it forwards or reads replicas) all run at once.
            var results = [Aerocache_V1_GetResponse](repeating: Aerocache_V1_GetResponse(), count: replies.count)
            try await withThrowingTaskGroup(of: (Int, Aerocache_V1_GetResponse).self) { group in
                for (index, reply) in replies.enumerated() {
                    if case .now(let response) = reply { results[index] = response; continue }
                    group.addTask { (index, try await reply.value()) }
                }
                for try await (index, response) in group { results[index] = response }
            }
            var response = Aerocache_V1_BatchGetResponse()
            response.results = results
            try Self.checkAnswerSize(response.results)
            return response
        }
    }

    /// Largest batch answer: beyond it the client is told to ask for fewer keys.
    static let maxBatchAnswerBytes = 16 << 20

    private static func checkAnswerSize(_ results: [Aerocache_V1_GetResponse]) throws(RPCError) {
        let bytes = results.reduce(0) { $0 + $1.value.count + 64 }
        if bytes > maxBatchAnswerBytes {
            throw RPCError(.resourceExhausted, "the answer would be about \(bytes) bytes, over the limit of "
                + "\(maxBatchAnswerBytes) bytes; ask for fewer keys at a time")
        }
    }

    // MARK: Writes

    func set(_ request: Aerocache_V1_SetRequest, deadline: UInt64? = nil) throws(RPCError) -> Reply<Aerocache_V1_SetResponse> {
        try validate { () throws(InputError) in try validateWrite(request) }
        return try write(request.key, request.consistency, forwarded: request.forwarded,
                         method: CacheMethods.set, request: request, deadline: deadline) { () throws(RPCError) in
            let (response, stamp) = try storeStamped(request)
            // The copy for replicas shares the request's value and metadata: no copy, no re-read.
            var record = Aerocache_V1_Record()
            record.key = request.key
            record.value = request.value
            record.metadata = request.metadata
            record.expiresAtUnixMs = stamp.expiresAtMillis
            record.timestamp = stamp.version.timestamp
            record.node = stamp.version.node
            return (response, record)
        }
    }

    func delete(_ request: Aerocache_V1_DeleteRequest, deadline: UInt64? = nil) throws(RPCError) -> Reply<Aerocache_V1_DeleteResponse> {
        try validate { () throws(InputError) in try limits.validate(key: request.key) }
        return try write(request.key, request.consistency, forwarded: request.forwarded,
                         method: CacheMethods.delete, request: request, deadline: deadline, keepsFirstAnswer: true) { () throws(RPCError) in
            var response = Aerocache_V1_DeleteResponse()
            response.deleted = try Self.status(Result { () throws(StorageError) in try store.delete(request.key) })
            return (response, store.record(request.key)?.proto)
        }
    }

    func increment(_ request: Aerocache_V1_IncrementRequest) throws(RPCError) -> Reply<Aerocache_V1_IncrementResponse> {
        try validate { () throws(InputError) in
            try limits.validate(key: request.key)
            try limits.validate(ttlMilliseconds: request.ttlMs)
        }
        return try routed(request.key, .default, forwarded: request.forwarded, method: CacheMethods.increment, request: request,
                          alone: { () throws(RPCError) in try count(request).response }) { coordinator, others, needed, view throws(RPCError) in
            try countAndReplicate(request, coordinator: coordinator, others: others, needed: needed, view: view, attempts: 2)
        }
    }

    /// Counts `request` here: the answer, the record replicas are sent, the window counted in.
    private func count(_ request: Aerocache_V1_IncrementRequest) throws(RPCError)
        -> (response: Aerocache_V1_IncrementResponse, record: EntryRecord, window: Version) {
        let result = Result { () throws(StorageError) in try store.increment(request.key, by: request.delta, ttlMillis: request.ttlMs) }
        do throws(RPCError) {
            let (value, record, window) = try Self.status(result)
            var response = Aerocache_V1_IncrementResponse()
            response.value = value
            return (response, record, window)
        } catch {
            throw RPCError(error.code, "cannot increment \(request.key): \(error.message)")
        }
    }

    /// Counts here, replicates, and answers with what the acknowledging replicas hold merged in:
    /// quorums overlap, so the answer includes every increment acknowledged before it and never
    /// goes backwards.
    ///
    /// When the merge shows that the window counted in was replaced (this replica had missed a
    /// delete or a set the others had), the increment counted nowhere: it is counted again,
    /// once, in the state the replicas hold.
    private func countAndReplicate(_ request: Aerocache_V1_IncrementRequest, coordinator: Coordinator,
                                   others: [Ring.Member], needed: Int, view: ClusterView,
                                   attempts: Int) throws(RPCError) -> Reply<Aerocache_V1_IncrementResponse> {
        let (response, record, window) = try count(request)
        let store = self.store
        let limits = self.limits
        return coordinator.replicate(record.proto, to: others, needed: needed, view: view) { merged throws(RPCError) in
            let now = NodeRuntime.wallMillis()
            for reply in merged {
                let held = EntryRecord(reply)
                guard held.key == request.key,
                      limits.check(held, now: now, maxClockSkewMillis: store.configuration.maxClockSkewMillis) == nil else { continue }
                _ = try? store.merge(held)
            }
            let state = store.record(request.key)
            // Counted nowhere: a set or delete newer than the window replaced it (this replica had
            // missed it). A window gone for another reason (it ended and was pruned) was counted.
            if let state, state.version > window, !(state.counter?.windows.contains(where: { $0.id == window }) ?? false) {
                guard attempts > 1 else {
                    throw RPCError(.aborted, "\(request.key) was deleted or set while it was incremented; the increment counted nowhere")
                }
                return try self.countAndReplicate(request, coordinator: coordinator, others: others, needed: needed, view: view,
                                                  attempts: attempts - 1)
            }
            var answer = response
            if let total = state?.visible(at: now).flatMap({ Counter.parse($0.value) }) { answer.value = total }
            return .now(answer)
        }
    }

    func touch(_ request: Aerocache_V1_TouchRequest) throws(RPCError) -> Reply<Aerocache_V1_TouchResponse> {
        try validate { () throws(InputError) in
            try limits.validate(key: request.key)
            try limits.validate(ttlMilliseconds: request.ttlMs)
        }
        return try write(request.key, .default, forwarded: request.forwarded,
                         method: CacheMethods.touch, request: request, deadline: nil, restamps: false) { () throws(RPCError) in
            var response = Aerocache_V1_TouchResponse()
            let touched = try Self.status(Result { () throws(StorageError) in try store.touch(request.key, ttlMillis: request.ttlMs) })
            guard let (stamp, record) = touched else { return (response, nil) }
            response.found = true
            response.expiresAtUnixMs = stamp.expiresAtMillis
            // Replicas get the new expiry alone, never the value as this replica holds it.
            return (response, record.proto)
        }
    }

    func batchSet(_ request: Aerocache_V1_BatchSetRequest, fromPeer: Bool = false,
                  deadline: UInt64? = nil) throws(RPCError) -> Reply<Aerocache_V1_BatchSetResponse> {
        // Validate the whole batch first so that a bad entry stores nothing.
        try validate { () throws(InputError) in
            try validateBatchSize(request.entries.count)
            for entry in request.entries { try validateWrite(entry) }
        }
        if try cluster() == nil {
            var response = Aerocache_V1_BatchSetResponse()
            response.results.reserveCapacity(request.entries.count)
            for entry in request.entries { response.results.append(try storeStamped(entry).0) }
            return .now(response)
        }
        let replies = try request.entries.map { entry throws(RPCError) in
            var single = entry
            if single.consistency == .default { single.consistency = request.consistency }
            if !fromPeer { single.forwarded = false }  // only a peer's call may say it was forwarded
            return try set(single, deadline: deadline)
        }
        return .later {
            var response = Aerocache_V1_BatchSetResponse()
            for reply in replies { response.results.append(try await reply.value()) }
            return response
        }
    }

    /// Runs a write here (one node, or as a replica of the key, then replicates) or forwards it.
    ///
    /// `local` writes to this node's store and returns the answer and the record replicas are
    /// sent (nil: nothing to send). With `restamps` (a set or a delete), a write that a replica
    /// answers with a later version is written again above it, once, while its caller waits
    /// (until `deadline`, monotonic nanoseconds, from `grpc-timeout`); the answer is the second
    /// write's, or the first's with `keepsFirstAnswer` (a delete: whether it removed a value).
    private func write<Request, Response>(
        _ key: String, _ consistency: Aerocache_V1_Consistency, forwarded: Bool,
        method: MethodDescriptor<Request, Response>, request: Request, deadline: UInt64?, restamps: Bool = true,
        keepsFirstAnswer: Bool = false,
        local: @escaping @Sendable () throws(RPCError) -> (Response, Aerocache_V1_Record?)
    ) throws(RPCError) -> Reply<Response> where Request: ForwardableRequest, Response: EpochStamped {
        try routed(key, consistency, forwarded: forwarded, method: method, request: request, deadline: deadline,
                   alone: { () throws(RPCError) in try local().0 }) { [store] coordinator, others, needed, view throws(RPCError) in
            let (response, record) = try local()
            guard let record else { return .now(response) }
            guard restamps else { return coordinator.replicate(record, to: others, needed: needed, view: view, response: response) }
            let version = Version(timestamp: record.timestamp, node: record.node)
            let (startedWall, started) = (NodeRuntime.wallMillis(), NodeRuntime.monotonicNanoseconds())
            let maxSkew = store.configuration.maxClockSkewMillis
            return coordinator.replicate(record, to: others, needed: needed, view: view) { held throws(RPCError) in
                // A replica held a later write of the key, one this node had not seen. It may
                // have been acknowledged before this call began: clocks a millisecond apart
                // order two writes through two coordinators by node number. A quorum of
                // replicas holds such a write, and quorums overlap, so it shows here: this
                // write is stamped again, above it, once.
                let later = held.lazy.filter { $0.key == key }.map { Version(timestamp: $0.timestamp, node: $0.node) }
                    .filter { $0 > version }.max()
                guard let later else { return .now(response) }
                // Not when the later write cannot have come first: stamped later than any clock
                // in step could read when this call began, or seen once this call's caller
                // stopped waiting (it may have written the key again since). A concurrent
                // write may win; this one was applied, as it would have been anyway.
                let waiting = (deadline ?? started &+ 2_000_000_000) &- 100_000_000
                guard later.physicalMillis <= startedWall + maxSkew, NodeRuntime.monotonicNanoseconds() < waiting else {
                    return .now(response)
                }
                // (The clock takes any version under this node's time plus the skew allowed.)
                guard (try? store.observe(later, forKey: key)) != nil else { return .now(response) }
                let (again, record) = try local()
                let answer = keepsFirstAnswer ? response : again
                guard let record else { return .now(answer) }
                return coordinator.replicate(record, to: others, needed: needed, view: view, response: answer)
            }
        }
    }

    /// Where a write runs: `alone` on a one-node cluster; `coordinate` here when this node holds
    /// a replica of the key (or a peer forwarded the call), given the other replicas and how
    /// many of them must acknowledge; else forwarded to the key's first live replica.
    private func routed<Request, Response>(
        _ key: String, _ consistency: Aerocache_V1_Consistency, forwarded: Bool,
        method: MethodDescriptor<Request, Response>, request: Request, deadline: UInt64? = nil,
        alone: @escaping @Sendable () throws(RPCError) -> Response,
        coordinate: @escaping @Sendable (Coordinator, [Ring.Member], Int, ClusterView) throws(RPCError) -> Reply<Response>
    ) throws(RPCError) -> Reply<Response> where Request: ForwardableRequest, Response: EpochStamped {
        guard let (coordinator, view) = try cluster() else { return .now(try alone()) }
        // A node refilling its ranges coordinates no write: a touch, a delete or an increment
        // reads what it holds, which may not be there yet.
        switch try coordinator.route(key: key, forwarded: forwarded, reading: !view.servesReads, view: view) {
        case .forward(let owner):
            let address = owner.address
            var call = request
            call.forwarded = true
            let forwardedCall = call
            // The coordinator waits as long as the caller does (at most 5 s).
            var timeout = Duration.seconds(5)
            if let deadline {
                let now = NodeRuntime.monotonicNanoseconds()
                guard now < deadline else { throw RPCError(.deadlineExceeded, "the caller's deadline passed before this node could forward the call") }
                timeout = min(timeout, .nanoseconds(Int64(clamping: deadline - now)))
            }
            return try coordinator.forward(method, forwardedCall, key: key, to: address, view: view, timeout: timeout) {
                try await self.routed(key, consistency, forwarded: true, method: method, request: forwardedCall, deadline: deadline,
                                      alone: alone, coordinate: coordinate).value()
            }.stamped(epoch: view.ring.epoch)
        case .local(let others, let count, let selfIsReplica):
            // This node's own copy counts only when it is one of the key's replicas.
            let needed = consistency.level(default: .quorum).requiredFromOthers(of: count, selfIsReplica: selfIsReplica)
            try coordinator.requireWritable(others, needed: needed, replicas: count, view: view)
            return try coordinate(coordinator, others, needed, view)
        }
    }

    private func validateWrite(_ request: Aerocache_V1_SetRequest) throws(InputError) {
        try limits.validate(key: request.key)
        try limits.validate(valueCount: request.value.count)
        try limits.validate(metadata: request.metadata)
        try limits.validate(ttlMilliseconds: request.ttlMs)
    }

    /// Writes one validated entry locally; returns the answer and the write's stamp.
    private func storeStamped(_ request: Aerocache_V1_SetRequest) throws(RPCError) -> (Aerocache_V1_SetResponse, WriteStamp) {
        let written = request.value.withUnsafeBytes { value in
            Result { () throws(StorageError) in
                try store.set(request.key, value: value, metadata: request.metadata, ttlMillis: request.ttlMs)
            }
        }
        let stamp = try Self.status(written)
        var response = Aerocache_V1_SetResponse()
        response.expiresAtUnixMs = stamp.expiresAtMillis
        return (response, stamp)
    }

    /// The gRPC status for a refused storage call.
    static func status<Success>(_ result: Result<Success, StorageError>) throws(RPCError) -> Success {
        switch result {
        case .success(let value):
            return value
        case .failure(let error):
            switch error {
            case .memoryFull: throw RPCError(.resourceExhausted, error.description)
            case .notAnInteger, .counterWindowFixed: throw RPCError(.failedPrecondition, error.description)
            case .overflow: throw RPCError(.outOfRange, error.description)
            case .clockSkew, .clockWentBack, .clockOutOfStep: throw RPCError(.unavailable, error.description)
            }
        }
    }

    private func validateBatchSize(_ count: Int) throws(InputError) {
        if count > Self.maxBatchKeys {
            throw InputError("batch has \(count) keys, over the limit of \(Self.maxBatchKeys) keys")
        }
    }

    private func validate(_ check: () throws(InputError) -> Void) throws(RPCError) {
        do {
            try check()
        } catch {
            throw RPCError(.invalidArgument, error.message)
        }
    }
}

extension Reply where Response: EpochStamped {
    /// The answer of a forwarded call, carrying this node's ring epoch (so a ring-aware client
    /// learns its ring is stale).
    func stamped(epoch: UInt64) throws(RPCError) -> Reply<Response> {
        try map { response in
            var stamped = response
            stamped.ringEpoch = Int64(epoch)
            return stamped
        }
    }
}

/// Requests a node may forward to the key's coordinator.
protocol ForwardableRequest: Sendable {
    var forwarded: Bool { get set }
}

extension Aerocache_V1_GetRequest: ForwardableRequest {}
extension Aerocache_V1_BatchGetRequest: ForwardableRequest {}
extension Aerocache_V1_HasRequest: ForwardableRequest {}
extension Aerocache_V1_SetRequest: ForwardableRequest {}
extension Aerocache_V1_DeleteRequest: ForwardableRequest {}
extension Aerocache_V1_IncrementRequest: ForwardableRequest {}
extension Aerocache_V1_TouchRequest: ForwardableRequest {}
