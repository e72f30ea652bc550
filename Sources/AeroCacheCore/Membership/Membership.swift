/// Cluster membership as a pure state machine: gossip of member records with heartbeats,
/// a φ accrual failure detector over them, and a suspicion period before a member is `down`.
///
/// Each node owns one ``Membership/Instance``. On every tick it bumps its own heartbeat and
/// names the peers to gossip with; a thin shell sends them the records and merges what comes
/// back. Heartbeats spread epidemically, so every live member's heartbeat reaches every node
/// within a few ticks. A ``PhiAccrualDetector`` per member learns how often its heartbeat
/// advances: when φ crosses the threshold the member is `suspect` (no longer sent requests);
/// after ``Settings/suspicionMillis`` more without a heartbeat it is `down`, as SWIM confirms
/// a suspicion after a timeout. A heartbeat at any point clears the suspicion. A down member
/// is still gossiped with now and then, so partitions heal by themselves.
public enum Membership {
    /// How a node sees a member.
    public enum Status: String, Sendable, CaseIterable {
        case joining, up, leaving, suspect, down
    }

    /// Where a member is in its life in the ring, as it (or the operator) says and gossip spreads.
    ///
    /// Reads go only to members that hold their ranges' data; writes also go to members that
    /// are about to, so that nothing written while data moves is missed (``ClusterView``).
    public enum Phase: Int, Sendable, CaseIterable {
        /// In the ring, holding its ranges: read from and written to.
        case normal = 0
        /// A newcomer with tokens, streaming its future ranges: written to, not yet in the
        /// ring reads use (the old owners serve them).
        case joining = 1
        /// A member that came back without its data (same id, same tokens): in the ring,
        /// written to, not read from until it has streamed its ranges back.
        case refilling = 2
        /// Decommissioning: read from and written to while it hands its ranges to their new owners.
        case leaving = 3
        /// Decommissioned: out of the ring; its ranges were handed over.
        case left = 4
        /// Removed by the operator while dead: out of the ring; the others re-replicate its ranges.
        case removed = 5

        /// Whether the member owns its tokens' ranges in the ring reads use.
        public var inReadRing: Bool { self == .normal || self == .refilling || self == .leaving }
        /// Whether the member owns its tokens' ranges once the moves under way are done.
        public var inFutureRing: Bool { self == .normal || self == .refilling || self == .joining }
        /// Whether the member has gone for good (its record stays, so that old gossip cannot bring it back).
        public var isGone: Bool { self == .left || self == .removed }
        /// Whether the member still lacks data it is a replica of.
        public var isFilling: Bool { self == .joining || self == .refilling }
    }

    /// What nodes gossip about a member.
    public struct Record: Sendable, Equatable {
        public var id: String
        public var address: String
        public var zone: String
        public var tokens: [UInt64]
        /// Raised by the member itself when it restarts, so its fresh heartbeat wins.
        public var incarnation: UInt64
        public var heartbeat: UInt64
        public var phase: Phase

        public init(id: String, address: String, zone: String = "", tokens: [UInt64], incarnation: UInt64,
                    heartbeat: UInt64 = 0, phase: Phase = .normal) {
            self.id = id
            self.address = address
            self.zone = zone
            self.tokens = tokens
            self.incarnation = incarnation
            self.heartbeat = heartbeat
            self.phase = phase
        }

        /// Whether this record is newer news about its member than `other`.
        public func supersedes(_ other: Record) -> Bool {
            (incarnation, heartbeat) > (other.incarnation, other.heartbeat)
        }

        public var ringMember: Ring.Member { Ring.Member(id: id, address: address, zone: zone, tokens: tokens) }
    }

    public struct Settings: Sendable {
        /// When a member becomes suspect: φ of its heartbeat arrivals reaching the threshold.
        public var detector = PhiAccrualDetector.Settings()
        /// How long a member stays suspect, without a heartbeat, before it is down.
        public var suspicionMillis: Int64 = 1_200
        /// Peers gossiped with per tick among the live ones.
        public var fanout = 1
        public init() {}
    }

    public struct Instance: Sendable {
        public let selfID: String
        public let settings: Settings
        public private(set) var records: [String: Record] { didSet { revision &+= 1 } }
        /// Each other member's failure detector, fed when its heartbeat advances.
        private var detectors: [String: PhiAccrualDetector] = [:] { didSet { revision &+= 1 } }
        /// Counts the changes to what a view is built from: of two snapshots, the one with the
        /// higher revision is the newer (a shell publishing from several tasks keeps the newest).
        public private(set) var revision: UInt64 = 0
        private var random: SplitMix64
        private var ticks: UInt64 = 0
        /// This node had no seeds and has not founded a cluster yet: it merges only gossip that
        /// holds an older incarnation of it with tokens, which makes it a member restarted
        /// without seeds (``Directive/restartedWithoutSeeds``), not a new cluster.
        public var founding = false
        /// This node founded a cluster alone, nobody having reached it while it was ``founding``.
        /// If its cluster reaches it after all, it must not merge into it (``Directive/foundedBesideItsCluster``).
        public var foundedAlone = false

        public init(me: Record, settings: Settings = .init(), seed: UInt64 = 0x5EED) {
            selfID = me.id
            self.settings = settings
            records = [me.id: me]
            random = SplitMix64(seed: seed)
        }

        public var me: Record { records[selfID]! }

        /// What the shell around an instance does after a tick or a merge.
        public enum Directive: Equatable, Sendable {
            /// Exchange records with this member, at this address.
            case gossip(id: String, address: String)
            /// The members or their tokens changed: publish the new view now.
            case publishView
            /// The others removed this node (`aerocachectl remove`) in its current incarnation,
            /// while it was cut off from them: it is no member any more and must stop.
            case removedSelf
            /// This founding node is a member restarted (empty) without seeds: it took back its
            /// tokens and turned ``Phase/refilling`` and must stream its ranges before it serves reads.
            case restartedWithoutSeeds
            /// This node founded a cluster alone, and then a cluster that had it as a member
            /// reached it: it holds none of its data and must stop (restart it with seeds).
            case foundedBesideItsCluster
        }

        /// Whether `record` is an earlier run of this node that held tokens (and did not leave).
        func isEarlierRunOfMe(_ record: Record) -> Bool {
            record.id == selfID && record.incarnation < me.incarnation && !record.tokens.isEmpty && !record.phase.isGone
        }

        /// Advances this node's heartbeat; says whom to gossip with now.
        public mutating func tick(nowMillis: Int64) -> [Directive] {
            ticks += 1
            records[selfID]!.heartbeat += 1
            let others = records.values.filter { $0.id != selfID && !$0.phase.isGone }.map(\.id).sorted()
            let live = others.filter { status(of: $0, nowMillis: nowMillis) != .down }
            let down = others.filter { status(of: $0, nowMillis: nowMillis) == .down }
            var targets: [String] = []
            for _ in 0..<min(settings.fanout, live.count) {
                let pick = live[Int(random.next() % UInt64(live.count))]
                if !targets.contains(pick) { targets.append(pick) }
            }
            // Now and then, every down member: when a partition heals it answers and comes back,
            // and a member restarted without seeds learns it was one (``founding``).
            if ticks % 5 == 0 { targets += down }
            return targets.map { .gossip(id: $0, address: records[$0]!.address) }
        }

        /// Takes in gossiped records; says to publish the view when the set of members or
        /// their tokens changed.
        @discardableResult
        public mutating func merge(_ incoming: [Record], nowMillis: Int64) -> [Directive] {
            if founding {
                // Until it founds, only news of an earlier run of it counts; any other cluster's
                // members are not its own.
                guard let earlier = incoming.first(where: isEarlierRunOfMe) else { return [] }
                founding = false
                // As a seed admits a member back: a joiner that had not streamed yet stays one.
                adoptTokens(earlier.tokens, phase: earlier.phase == .joining ? .joining : .refilling)
                return merge(incoming, nowMillis: nowMillis) + [.publishView, .restartedWithoutSeeds]
            }
            if foundedAlone && incoming.contains(where: isEarlierRunOfMe) { return [.foundedBesideItsCluster] }
            var ringChanged = false
            var removedSelf = false
            for record in incoming {
                if record.id == selfID {
                    // Others may hold an older incarnation of us; ours is the truth, unless
                    // they removed this very incarnation.
                    removedSelf = removedSelf || record.phase == .removed && record.incarnation == me.incarnation
                    continue
                }
                guard let known = records[record.id] else {
                    records[record.id] = record
                    detectors[record.id] = PhiAccrualDetector(settings: settings.detector, nowMillis: nowMillis)
                    ringChanged = true
                    continue
                }
                // A member gone for good stays gone in its incarnation, whatever heartbeats a
                // node cut off from the news (or the member itself) carried meanwhile; a
                // restart, a new incarnation, may come back.
                let sameIncarnation = record.incarnation == known.incarnation
                if known.phase.isGone && !record.phase.isGone && record.incarnation <= known.incarnation { continue }
                if record.supersedes(known) || record.phase.isGone && !known.phase.isGone && sameIncarnation {
                    var record = record
                    // Tokens, once allotted, stay: a restarted member's first record (before it
                    // has joined again) carries none and must not take it out of the ring. A
                    // member that has gone for good keeps none.
                    if record.tokens.isEmpty && !known.phase.isGone { record.tokens = known.tokens }
                    if record.tokens != known.tokens || record.address != known.address || record.zone != known.zone
                        || record.phase != known.phase {
                        ringChanged = true
                    }
                    records[record.id] = record
                    heard(from: record.id, restarted: record.incarnation != known.incarnation, nowMillis: nowMillis)
                }
            }
            return (ringChanged ? [.publishView] : []) + (removedSelf ? [.removedSelf] : [])
        }

        /// Replaces this node's own record (tokens allotted at join).
        public mutating func replaceSelf(_ record: Record) {
            precondition(record.id == selfID)
            records[selfID] = record
        }

        /// Takes a record as given, even when it is not newer (a seed allotting a joiner its tokens).
        public mutating func acceptRecord(_ record: Record, nowMillis: Int64) {
            guard record.id != selfID else { return }
            records[record.id] = record
            heard(from: record.id, restarted: false, nowMillis: nowMillis)
        }

        /// A member's heartbeat advanced. A restart (new incarnation) starts a fresh history.
        private mutating func heard(from id: String, restarted: Bool, nowMillis: Int64) {
            if restarted || detectors[id] == nil {
                detectors[id] = PhiAccrualDetector(settings: settings.detector, nowMillis: nowMillis)
            } else {
                detectors[id]!.heartbeat(nowMillis: nowMillis)
            }
        }

        /// Marks this node as leaving (decommission) in what it gossips.
        public mutating func setLeaving() {
            setPhase(.leaving)
        }

        /// Moves this node to `phase`, as news that beats what others hold of it.
        public mutating func setPhase(_ phase: Phase) {
            records[selfID]!.phase = phase
            records[selfID]!.heartbeat += 1
        }

        /// Marks another member as removed by the operator, as news that beats any record of it
        /// gossip still carries (its heartbeat stopped when it died; a jump keeps stragglers behind).
        public mutating func markRemoved(_ id: String) {
            guard id != selfID, var record = records[id] else { return }
            record.phase = .removed
            record.heartbeat += 1_000
            records[id] = record
        }

        /// Members known and not gone for good.
        public var currentIDs: [String] {
            records.values.filter { !$0.phase.isGone }.map(\.id).sorted()
        }

        public func status(of id: String, nowMillis: Int64) -> Status {
            guard let record = records[id], !record.phase.isGone else { return .down }
            if id != selfID, let detector = detectors[id], detector.convicts(nowMillis: nowMillis) {
                // φ only grows while no heartbeat comes, so this asks whether it was already
                // convicted a whole suspicion period ago.
                return detector.convicts(nowMillis: nowMillis - settings.suspicionMillis) ? .down : .suspect
            }
            if record.tokens.isEmpty || record.phase.isFilling { return .joining }
            return record.phase == .leaving ? .leaving : .up
        }

        /// Whether `id` should be sent requests (up or leaving; suspect counts as not alive).
        public func isAlive(_ id: String, nowMillis: Int64) -> Bool {
            switch status(of: id, nowMillis: nowMillis) {
            case .up, .leaving, .joining: true
            case .suspect, .down: false
            }
        }

        /// The ring reads use: every member with tokens that holds its ranges' data or is
        /// refilling them in place, down ones included (their replicas serve for them).
        public var ring: Ring {
            ring { $0.phase.inReadRing }
        }

        /// The ring once the moves under way are done (joiners in, leavers out); writes also
        /// go to the members it adds to a key's replicas.
        public var futureRing: Ring {
            ring { $0.phase.inFutureRing }
        }

        /// The ring of the members with tokens whose records pass `included`.
        public func ring(where included: (Record) -> Bool) -> Ring {
            let members = records.values.filter { !$0.tokens.isEmpty && included($0) }.map(\.ringMember)
            return Ring(members: members, epoch: Self.epoch(of: members))
        }

        /// Members whose phase is `phase`.
        public func members(in phase: Phase) -> [String] {
            records.values.filter { $0.phase == phase && !$0.tokens.isEmpty }.map(\.id).sorted()
        }

        /// A fingerprint of the member set and tokens: equal on every node that sees the same ring.
        public static func epoch(of members: [Ring.Member]) -> UInt64 {
            var text = ""
            for member in members.sorted(by: { $0.id < $1.id }) {
                text += member.id + "@" + member.address + "#" + member.zone + ":" + String(member.tokens.first ?? 0)
                    + "/" + String(member.tokens.count) + ";"
            }
            return XXHash64.hash(text) & 0x1F_FFFF_FFFF_FFFF  // exact in JSON numbers
        }
    }
}
