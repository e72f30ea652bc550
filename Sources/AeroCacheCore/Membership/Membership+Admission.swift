/// Why a seed refuses a joiner.
public enum JoinRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// The joiner has the seed's own id.
    case sameIDAsSeed(String)
    /// The joiner's record breaks a rule (``Membership/Record/problem(tokensPerNode:nowMillis:maxClockSkewMillis:)``).
    case badRecord(String)
    /// Another member already stamps the joiner's version number.
    case versionNumberTaken(joiner: String, member: String)
    /// Another member is joining or leaving now: one move at a time (the joiner asks again).
    case busy(String)
    /// The operator removed this very run of the joiner (`aerocachectl remove`).
    case removed(String)

    public var description: String {
        switch self {
        case .sameIDAsSeed(let id):
            "node id \(id) is the id of the seed it joins through; start it with another --node-id"
        case .badRecord(let problem):
            problem
        case .busy(let other):
            "\(other) is joining or leaving the cluster now; this node joins when it is done "
                + "(if \(other) died, `aerocachectl remove \(other)`)"
        case .removed(let id):
            "\(id) was removed from this cluster (aerocachectl remove): restart it to join again"
        case .versionNumberTaken(let joiner, let member):
            "node id \(joiner) stamps the same version number as member \(member); start it with another --node-id"
        }
    }
}

extension Membership.Instance {
    /// Admits `joiner` into the cluster, as the seed it joins through: a member that restarts
    /// keeps the tokens it had (its place in the ring) and comes back ``Membership/Phase/refilling``
    /// (a cache restarts empty); a new one (or one that had left for good) is allotted tokens
    /// beside those of the members in the ring and comes in ``Membership/Phase/joining``. Either
    /// streams its ranges before it serves reads. Returns the joiner's record as the cluster now holds it.
    ///
    /// `nowMillis` is the wall clock (the joiner's incarnation is checked against it);
    /// `detectorMillis` the time the failure detectors run on (by default the same).
    public mutating func admit(_ joiner: Membership.Record, tokensPerNode: Int, replicationFactor: Int, nowMillis: Int64,
                               detectorMillis: Int64? = nil, maxClockSkewMillis: Int64) throws(JoinRefusal) -> Membership.Record {
        guard joiner.id != selfID else { throw .sameIDAsSeed(joiner.id) }
        if let problem = joiner.problem(tokensPerNode: tokensPerNode, nowMillis: nowMillis, maxClockSkewMillis: maxClockSkewMillis) {
            throw .badRecord(problem)
        }
        if let twin = records.values.first(where: { $0.id != joiner.id && $0.versionNode == joiner.versionNode }) {
            throw .versionNumberTaken(joiner: joiner.id, member: twin.id)
        }
        if let known = records[joiner.id], known.phase == .removed, joiner.incarnation <= known.incarnation {
            throw .removed(joiner.id)
        }
        var record = joiner
        if let known = records[joiner.id], !known.tokens.isEmpty, !known.phase.isGone {
            record.tokens = known.tokens
            // A joiner that restarted before it had its data stays out of the ring reads use.
            record.phase = known.phase == .joining ? .joining : .refilling
        } else {
            let members = records.values.filter { !$0.tokens.isEmpty && $0.phase.inFutureRing }.map(\.ringMember)
            record.tokens = TokenAllocator.tokens(for: joiner.id, joining: members, count: tokensPerNode,
                                                  replicas: replicationFactor, zone: joiner.zone)
            record.phase = .joining
        }
        // News that beats the record the cluster holds of the member's last life.
        if let known = records[joiner.id], record.incarnation == known.incarnation {
            record.heartbeat = max(record.heartbeat, known.heartbeat + 1)
        }
        merge([record], nowMillis: detectorMillis ?? nowMillis)
        acceptRecord(record, nowMillis: detectorMillis ?? nowMillis)
        return records[joiner.id]!
    }

    /// Takes the tokens, and the phase, a seed allotted to this node.
    public mutating func adoptTokens(_ tokens: [UInt64], phase: Membership.Phase) {
        var me = self.me
        me.tokens = tokens
        me.phase = phase
        me.heartbeat += 1
        replaceSelf(me)
    }

    /// Gossiped records sorted into those worth merging and those refused, with why: each is
    /// checked like a request, and of two members that would stamp one version number (their
    /// writes would tie) the second heard of is kept out. Seeds refuse such a joiner; this
    /// catches two joins through different seeds.
    public func screen(_ incoming: [Membership.Record], tokensPerNode: Int, nowMillis: Int64,
                       maxClockSkewMillis: Int64) -> (accepted: [Membership.Record], refused: [MemberRefusal]) {
        var numbers: [UInt32: String] = [:]
        for record in records.values { numbers[record.versionNode] = record.id }
        var accepted: [Membership.Record] = []
        var refused: [MemberRefusal] = []
        for record in incoming {
            if let problem = record.problem(tokensPerNode: tokensPerNode, nowMillis: nowMillis, maxClockSkewMillis: maxClockSkewMillis,
                                            knownIncarnation: records[record.id]?.incarnation ?? 0) {
                refused.append(.badRecord(problem))
            } else if let twin = numbers[record.versionNode], twin != record.id {
                refused.append(.versionNumberTaken(member: record.id, by: twin))
            } else {
                numbers[record.versionNode] = record.id
                accepted.append(record)
            }
        }
        return (accepted, refused)
    }
}

/// A gossiped member record left out of the membership, and why.
public enum MemberRefusal: Equatable, Sendable, CustomStringConvertible {
    case badRecord(String)
    case versionNumberTaken(member: String, by: String)

    public var description: String {
        switch self {
        case .badRecord(let problem): problem
        case .versionNumberTaken(let member, let twin): "member \(member) stamps the same version number as \(twin)"
        }
    }
}

extension ClusterView {
    /// The snapshot of `instance` at `nowMillis`, as every call reads it.
    public convenience init(_ instance: Membership.Instance, clocks: ClockCheck = ClockCheck(), nowMillis: Int64, replicationFactor: Int) {
        let ids = instance.currentIDs
        self.init(selfID: instance.selfID, ring: instance.ring,
                  alive: Set(ids.filter { instance.isAlive($0, nowMillis: nowMillis) }),
                  statuses: ids.map { ($0, instance.records[$0]!.address, instance.status(of: $0, nowMillis: nowMillis)) },
                  replicationFactor: replicationFactor, isJoined: !instance.me.tokens.isEmpty,
                  clocks: clocks, futureRing: instance.futureRing,
                  unreadable: Set(instance.members(in: .refilling)), revision: instance.revision)
    }
}
