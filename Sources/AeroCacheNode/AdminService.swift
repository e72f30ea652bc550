import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC

#if canImport(Glibc)
import Glibc
#endif

/// `aerocache.v1.Admin`: what this node holds and how it sees the cluster.
struct AdminService: Sendable {
    let store: StorageEngine
    let coordinator: Coordinator
    let antiEntropy: AntiEntropyRounds
    let transfers: RangeTransfers

    var methods: [ServerMethod] {
        [
            ServerMethod(AdminMethods.status, permission: .role(.read)) { _, _ throws(RPCError) in .now(status()) },
            ServerMethod(AdminMethods.ring, permission: .role(.read)) { _, _ throws(RPCError) in .now(ring()) },
            // A round scans and merges: on the background thread, never on an event loop.
            ServerMethod(AdminMethods.repair, permission: .role(.admin)) { request, _ throws(RPCError) in
                .later {
                    let round = Task.detached { try await repair(request) }
                    return try await withTaskCancellationHandler { try await round.value } onCancel: { round.cancel() }
                }
            },
            ServerMethod(AdminMethods.decommission, permission: .role(.admin)) { request, _ throws(RPCError) in .now(try decommission(request)) },
            ServerMethod(AdminMethods.remove, permission: .role(.admin)) { request, _ throws(RPCError) in
                .later {
                    try await coordinator.cluster.remove(request.nodeID)
                    return Aerocache_V1_RemoveResponse()
                }
            },
        ]
    }

    /// Runs an anti-entropy round now and answers what it did with each peer.
    func repair(_ request: Aerocache_V1_RepairRequest) async throws(RPCError) -> Aerocache_V1_RepairResponse {
        let peer = request.nodeID.isEmpty ? nil : request.nodeID
        guard let outcomes = await antiEntropy.round(only: peer, rangeHash: request.onlyRange ? request.rangeHash : nil) else {
            throw RPCError(.unavailable, "an anti-entropy round is running and another repair waits for it; try again when they end")
        }
        if let peer, outcomes.isEmpty {
            throw RPCError(.notFound, "\(peer) is not a live member that shares ranges with this node")
        }
        var response = Aerocache_V1_RepairResponse()
        response.peers = outcomes.map { outcome in
            var peer = Aerocache_V1_PeerRepair()
            peer.nodeID = outcome.peer
            peer.compared = UInt32(outcome.report.compared)
            peer.differing = UInt32(outcome.report.differing)
            peer.unmatched = UInt32(outcome.report.unmatched)
            peer.repairedHere = UInt64(outcome.report.repairedHere)
            peer.repairedThere = UInt64(outcome.report.repairedThere)
            peer.bytes = UInt64(outcome.bytes)
            peer.error = outcome.report.failure.map { "\($0)" } ?? ""
            return peer
        }
        return response
    }

    /// Starts this node's decommission (``RangeTransfers``); `Status` shows how far it got.
    func decommission(_ request: Aerocache_V1_DecommissionRequest) throws(RPCError) -> Aerocache_V1_DecommissionResponse {
        let view = coordinator.cluster.view
        guard request.nodeID == view.selfID else {
            throw RPCError(.invalidArgument, "this node is \(view.selfID), not \(request.nodeID): send the call to the node to decommission")
        }
        guard !view.isSingleNode else {
            throw RPCError(.failedPrecondition, "\(view.selfID) is the only member: nobody could take its ranges")
        }
        // One move at a time: a range handed to a member that is itself still joining, or
        // leaving, would have no complete copy where reads go.
        guard view.futureRing == nil else {
            throw RPCError(.failedPrecondition, "another node is joining or leaving now: decommission \(view.selfID) when it is done")
        }
        guard view.ring.members.count > view.replicationFactor else {
            throw RPCError(.failedPrecondition, "\(view.ring.members.count) members hold \(view.replicationFactor) copies of each key: "
                + "without \(view.selfID) a key would have fewer; add a node first")
        }
        guard transfers.requestDecommission() else {
            throw RPCError(.failedPrecondition, "\(view.selfID) is \(coordinator.cluster.phase), not up: it cannot be decommissioned now")
        }
        return Aerocache_V1_DecommissionResponse()
    }

    /// Every member with its state as seen here; the figures of this node itself.
    func status() -> Aerocache_V1_StatusResponse {
        let view = coordinator.cluster.view
        var response = Aerocache_V1_StatusResponse()
        for (id, address, state) in view.statuses {
            var node = Aerocache_V1_NodeStatus()
            node.id = id
            node.address = address
            node.state = state.rawValue
            node.ringEpoch = Int64(view.ring.epoch)
            if id == view.selfID {
                let statistics = store.statistics
                node.keys = Int64(store.liveKeyCount())
                node.entries = Int64(statistics.entries)
                node.memoryBytes = Int64(statistics.memoryBytes)
                node.maxMemoryBytes = Int64(store.configuration.maxMemoryBytes)
                node.evictions = Int64(statistics.evictions)
                node.residentBytes = Int64(Self.residentBytes())
                if let progress = transfers.progress {
                    var streaming = Aerocache_V1_StreamProgress()
                    streaming.purpose = progress.purpose.rawValue
                    streaming.rangesTotal = UInt32(progress.rangesTotal)
                    streaming.rangesDone = UInt32(progress.rangesDone)
                    streaming.bytes = UInt64(progress.bytes)
                    streaming.etaMs = progress.eta.map { Int64($0.wholeMilliseconds) } ?? -1
                    streaming.done = progress.done
                    node.streaming = streaming
                }
            }
            response.nodes.append(node)
        }
        return response
    }

    func ring() -> Aerocache_V1_RingResponse {
        let view = coordinator.cluster.view
        var response = Aerocache_V1_RingResponse()
        let states = Dictionary(uniqueKeysWithValues: view.statuses.map { ($0.id, $0.status) })
        for member in view.ring.members {
            var entry = Aerocache_V1_RingMember()
            entry.id = member.id
            entry.address = member.address
            entry.zone = member.zone
            entry.state = states[member.id]?.rawValue ?? "down"
            entry.tokens = member.tokens
            response.members.append(entry)
        }
        response.replicationFactor = UInt32(view.replicationFactor)
        response.epoch = Int64(view.ring.epoch)
        response.forwardedRequests = Int64(coordinator.forwardedCount)
        response.hintsPending = Int64(coordinator.cluster.hints.count)
        return response
    }

    /// Resident memory of this process, from `/proc/self/statm` (0 where there is none, as on macOS).
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return 0 }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
