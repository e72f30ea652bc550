/// Where a call on one key runs, as this node's view of the cluster decides.
public enum Route: Equatable, Sendable {
    /// This node coordinates. `others`: the key's replicas but this node; `replicas`: how many
    /// there are; `selfIsReplica`: whether this node is one (not when a peer with another view
    /// of the ring forwarded the call here).
    case local(others: [Ring.Member], replicas: Int, selfIsReplica: Bool)
    /// The key's first live replica coordinates.
    case forward(to: Ring.Member)
}

/// Where a forwarded call goes next: another node, or this one (it is next in line).
public enum ForwardTarget: Equatable, Sendable {
    case peer(address: String)
    case here
}

/// Why a call cannot run on the cluster as this node sees it (gRPC `UNAVAILABLE`).
public enum RoutingRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case noMemberHasTokens
    case noReplicaAlive(replicas: Int)
    /// This node's clock is far from its peers': its versions would be wrong.
    case clockOutOfStep(String)
    /// Counts include this node's own copy.
    case tooFewReplicasAlive(alive: Int, replicas: Int, needed: Int, reading: Bool)

    public var description: String {
        switch self {
        case .noMemberHasTokens:
            "the cluster has no member with tokens yet"
        case .noReplicaAlive(let replicas):
            "none of the key's \(replicas) replicas is alive"
        case .clockOutOfStep(let problem):
            problem
        case .tooFewReplicasAlive(let alive, let replicas, let needed, let reading):
            "\(alive) of \(replicas) replicas are alive; the \(reading ? "read" : "call") needs \(needed)"
        }
    }
}

extension ClusterView {
    /// Where a call on `key` runs: here when this node holds a replica of the key (or the call
    /// was `forwarded` here by a peer), else at the key's first live replica.
    public func route(key: String, forwarded: Bool) throws(RoutingRefusal) -> Route {
        if let others = othersWhenEveryoneIsAReplica {
            return .local(others: others, replicas: others.count + 1, selfIsReplica: true)
        }
        let replicas = replicas(forKey: key)
        guard !replicas.isEmpty else { throw .noMemberHasTokens }
        let others = replicas.filter { $0.id != selfID }
        if others.count < replicas.count || forwarded {
            return .local(others: others, replicas: replicas.count, selfIsReplica: others.count < replicas.count)
        }
        // A replica refilling its ranges coordinates nothing: a touch, a delete or an increment
        // reads what it holds, which may not be there yet.
        guard let coordinator = replicas.first(where: { isAlive($0) && !unreadable.contains($0.id) })
            ?? replicas.first(where: isAlive) else { throw .noReplicaAlive(replicas: replicas.count) }
        return .forward(to: coordinator)
    }

    /// Where a read of `key` runs: as ``route(key:forwarded:)``, but members refilling their
    /// ranges (``unreadable``) are never read from, nor count as one of the replicas that answer.
    public func readRoute(key: String, forwarded: Bool) throws(RoutingRefusal) -> Route {
        guard !unreadable.isEmpty else { return try route(key: key, forwarded: forwarded) }
        let replicas = replicas(forKey: key)
        guard !replicas.isEmpty else { throw .noMemberHasTokens }
        let readable = replicas.filter { !unreadable.contains($0.id) }
        let others = readable.filter { $0.id != selfID }
        let selfIsReplica = others.count < readable.count
        if selfIsReplica || forwarded {
            return .local(others: others, replicas: replicas.count, selfIsReplica: selfIsReplica)
        }
        guard let coordinator = readable.first(where: isAlive) else { throw .noReplicaAlive(replicas: replicas.count) }
        return .forward(to: coordinator)
    }

    /// Refuses a write before anything is written when fewer than `needed` of `others` are
    /// alive, or this node's clock (read now: `nowMillis`, `monotonicMillis`) is out of step
    /// with its peers'.
    public func checkWritable(_ others: [Ring.Member], needed: Int, replicas: Int,
                              nowMillis: Int64, monotonicMillis: Int64) throws(RoutingRefusal) {
        if let problem = clockProblem(nowMillis: nowMillis, monotonicMillis: monotonicMillis) { throw .clockOutOfStep(problem) }
        try checkAlive(others, needed: needed, replicas: replicas, reading: false)
    }

    /// The members of `others` alive now; refused when fewer than `needed`.
    @discardableResult
    public func checkAlive(_ others: [Ring.Member], needed: Int, replicas: Int, reading: Bool) throws(RoutingRefusal) -> [Ring.Member] {
        let alive = others.filter(isAlive)
        if alive.count < needed {
            throw .tooFewReplicasAlive(alive: alive.count + 1, replicas: replicas, needed: needed + 1, reading: reading)
        }
        return alive
    }

    /// Where a call forwarded to `first` goes, in order, when the nodes before cannot be
    /// reached: `first`, then the key's live replicas, each once; the list ends at this
    /// node when it is next (it then runs the call itself).
    public func forwardingOrder(forKey key: String, first: String) -> [ForwardTarget] {
        let ownAddress = address(of: selfID)
        var seen = Set<String>()
        var order: [ForwardTarget] = []
        let next = replicas(forKey: key).filter { isAlive($0) && !unreadable.contains($0.id) }
        for address in [first] + next.map(\.address) where seen.insert(address).inserted {
            if address == ownAddress {
                order.append(.here)
                break
            }
            order.append(.peer(address: address))
        }
        return order
    }
}

extension Consistency {
    /// Acknowledgements needed from the other replicas, out of `replicas`, when this node's
    /// own copy counts (`selfIsReplica`) or not.
    public func requiredFromOthers(of replicas: Int, selfIsReplica: Bool) -> Int {
        required(of: replicas) - (selfIsReplica ? 1 : 0)
    }
}
