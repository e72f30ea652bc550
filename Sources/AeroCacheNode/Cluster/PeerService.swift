import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC

/// `aerocache.v1.Peer`: what other nodes call — join, gossip, replicate, read, anti-entropy.
///
/// Only members may call it: a call without the cluster's credential
/// (``ServerCallContext/isPeer``) is `UNAUTHENTICATED` before its request is decoded. What members send is checked like a
/// client request: a record that breaks a limit or comes from a clock too far ahead is
/// refused on its own (and counted), the rest of its batch is applied.
struct PeerService: Sendable {
    let cluster: ClusterShell
    let store: StorageEngine
    let limits: Limits
    let metrics: NodeMetrics
    /// Where anti-entropy's scans and merges run (``BackgroundThread``).
    let background: any TaskExecutor

    /// Most keys one Read may ask for, and most bytes its answer may carry.
    static let maxReadKeys = 1000
    static let maxReadReplyBytes = 16 << 20
    /// Most records one Replicate may carry (a link sends at most 512), most members one gossip message.
    static let maxRecords = 4096
    static let maxMembers = 4096

    var methods: [ServerMethod] {
        [
            ServerMethod(PeerMethods.join, permission: .membersOnly) { request, _ throws(RPCError) in
                .now(try cluster.handleJoin(request))
            },
            ServerMethod(PeerMethods.gossip, permission: .membersOnly,
                         limiting: RepeatedLimit(field: 2, limit: Self.maxMembers, name: "members")) { request, _ throws(RPCError) in
                .now(try cluster.handleGossip(request))
            },
            ServerMethod(PeerMethods.replicate, permission: .membersOnly,
                         limiting: RepeatedLimit(field: 1, limit: Self.maxRecords, name: "records")) { request, _ throws(RPCError) in
                .now(replicate(request))
            },
            ServerMethod(PeerMethods.read, permission: .membersOnly,
                         limiting: RepeatedLimit(field: 1, limit: Self.maxReadKeys, name: "keys")) { request, _ throws(RPCError) in
                // A coordinator whose view lags may still ask a node streaming its ranges in:
                // "not found" from it would count as an answer.
                guard cluster.view.servesReads else { throw RPCError(.unavailable, "this node is still streaming its ranges in") }
                return .now(try read(request))
            },
            // Anti-entropy scans and merges: on the background thread, never on an event loop.
            ServerMethod(PeerMethods.digestRoots, permission: .membersOnly,
                         limiting: RepeatedLimit(field: 1, limit: PeerReplica.maxPieces, name: "pieces")) { request, context throws(RPCError) in
                inBackground(context) { compareRoots(request) }
            },
            ServerMethod(PeerMethods.digestKeys, permission: .membersOnly,
                         limiting: RepeatedLimit(field: 1, limit: PeerReplica.maxListedPieces, name: "requests")) { request, context throws(RPCError) in
                inBackground(context) { listKeys(request) }
            },
            ServerMethod(PeerMethods.syncRecords, permission: .membersOnly,
                         limiting: RepeatedLimit(field: 1, limit: ReplicaSync.maxPushRecords, name: "push")) { request, context throws(RPCError) in
                guard request.want.count <= PeerReplica.maxWant else {
                    throw RPCError(.invalidArgument, "want names \(request.want.count) keys, over the limit of \(PeerReplica.maxWant)")
                }
                return inBackground(context) { syncRecords(request) }
            },
            ServerMethod(PeerMethods.streamRange, permission: .membersOnly) { request, context throws(RPCError) in
                // A node that has not joined holds nothing to stream: an empty answer would read as
                // an empty range.
                guard cluster.view.isJoined else { throw RPCError(.unavailable, "this node has not joined its cluster yet") }
                // Nor does one still streaming its own ranges in.
                guard !cluster.phase.isFilling else { throw RPCError(.unavailable, "this node is still streaming its ranges in") }
                return inBackground(context) { streamRange(request) }
            },
        ]
    }

    /// `work` on the background thread, unless the caller stopped waiting before the thread
    /// got to it (a busy node gives that thread little CPU: it must not spend it on answers
    /// nobody reads).
    private func inBackground<Response: Sendable>(_ context: ServerCallContext,
                                                  _ work: @escaping @Sendable () -> Response) -> Reply<Response> {
        .later {
            try await Task(executorPreference: background) {
                if let deadline = context.deadline, NodeRuntime.monotonicNanoseconds() >= deadline {
                    throw RPCError(.deadlineExceeded, "the deadline passed before this node got to the call")
                }
                return work()
            }.value
        }
    }

    private var replica: StoreReplica {
        StoreReplica(store: store, limits: limits) { [metrics] in metrics.rejected($0) }
    }

    func compareRoots(_ request: Aerocache_V1_DigestRootsRequest) -> Aerocache_V1_DigestRootsResponse {
        // Cut where this node's ring says ranges start (a no-op unless the ring changed).
        let view = cluster.view
        if view.isJoined && !view.ring.isEmpty { store.cutDigests(atTokens: view.ring.tokens) }
        let comparison = replica.compareRoots(request.pieces.map(DigestPiece.init))
        var response = Aerocache_V1_DigestRootsResponse()
        response.differing = comparison.differing.map(\.proto)
        response.unmatched = UInt32(comparison.unmatched)
        return response
    }

    func listKeys(_ request: Aerocache_V1_DigestKeysRequest) -> Aerocache_V1_DigestKeysResponse {
        let listing = replica.listing(request.requests.map(BucketRequest.init))
        var response = Aerocache_V1_DigestKeysResponse()
        response.keyHashes = listing.keys.map(\.keyHash)
        response.digests = listing.keys.map(\.digest)
        response.answered = UInt32(listing.answered)
        response.roomBytes = UInt64(listing.roomBytes)
        return response
    }

    func syncRecords(_ request: Aerocache_V1_SyncRecordsRequest) -> Aerocache_V1_SyncRecordsResponse {
        let answer = replica.exchange(push: request.push.map(EntryRecord.init), want: request.want)
        var response = Aerocache_V1_SyncRecordsResponse()
        response.applied = UInt32(answer.applied)
        response.records = answer.records.map(\.proto)
        response.answered = UInt32(answer.answered)
        return response
    }

    /// The bytes a StreamRange page is filled to: what the caller asks, within these bounds
    /// (tiny pages would cost a shard scan each).
    static let streamPageBytes = (64 << 10)...(4 << 20)

    func streamRange(_ request: Aerocache_V1_StreamRangeRequest) -> Aerocache_V1_StreamRangeResponse {
        let maxBytes = min(max(Int(request.maxBytes), Self.streamPageBytes.lowerBound), Self.streamPageBytes.upperBound)
        let page = store.rangePage(start: request.start, width: request.width, from: request.offset, maxBytes: maxBytes)
        var response = Aerocache_V1_StreamRangeResponse()
        response.records = page.records.map(\.proto)
        response.next = page.next ?? 0
        response.done = page.next == nil
        return response
    }

    func replicate(_ request: Aerocache_V1_ReplicateRequest) -> Aerocache_V1_ReplicateResponse {
        var response = Aerocache_V1_ReplicateResponse()
        let now = NodeRuntime.wallMillis()
        for (index, proto) in request.records.enumerated() {
            let record = EntryRecord(proto)
            var refusal = limits.check(record, now: now, maxClockSkewMillis: store.configuration.maxClockSkewMillis)
            if refusal == nil {
                do throws(StorageError) {
                    if try store.merge(record) { response.applied += 1 }
                } catch {
                    if case .clockSkew = error { refusal = .clockSkew } else { refusal = .memory }
                }
            }
            if let refusal {
                metrics.rejected(refusal)
                response.rejected.append(UInt32(index))
                continue
            }
            // A counter's coordinator learns every increment the replicas hold.
            if record.counter != nil, let held = store.record(record.key) {
                var merged = Aerocache_V1_MergedRecord()
                merged.index = UInt32(index)
                merged.record = held.proto
                response.merged.append(merged)
            } else if record.version != .zero, let held = store.valueVersion(record.key), held > record.version {
                // A set's or a delete's learns the version of the later write that beat it here,
                // a counter's window included (the key and the version alone): ``CacheService``
                // may stamp it again.
                var merged = Aerocache_V1_MergedRecord()
                merged.index = UInt32(index)
                merged.record.key = record.key
                merged.record.timestamp = held.timestamp
                merged.record.node = held.node
                response.merged.append(merged)
            }
        }
        return response
    }

    func read(_ request: Aerocache_V1_ReadRequest) throws(RPCError) -> Aerocache_V1_ReadResponse {
        guard request.keys.count <= Self.maxReadKeys else {
            throw RPCError(.invalidArgument, "read asks for \(request.keys.count) keys, over the limit of \(Self.maxReadKeys)")
        }
        var response = Aerocache_V1_ReadResponse()
        var bytes = 0
        for key in request.keys {
            do throws(InputError) {
                try limits.validate(key: key)
            } catch {
                throw RPCError(.invalidArgument, error.message)
            }
            if let record = store.record(key) {
                bytes += HintStore.size(of: record)
                guard bytes <= Self.maxReadReplyBytes else {
                    throw RPCError(.resourceExhausted, "the answer would pass \(Self.maxReadReplyBytes) bytes; ask for fewer keys")
                }
                response.records.append(record.proto)
                response.found.append(true)
            } else {
                response.records.append(Aerocache_V1_Record())
                response.found.append(false)
            }
        }
        return response
    }
}
