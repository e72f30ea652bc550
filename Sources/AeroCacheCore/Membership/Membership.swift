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

    /// What nodes gossip about a member.
    public struct Record: Sendable, Equatable {
        public var id: String
        public var address: String
        public var zone: String
        public var tokens: [UInt64]
        /// Raised by the member itself when it restarts, so its fresh heartbeat wins.
        public var incarnation: UInt64
        public var heartbeat: UInt64
        public var leaving: Bool

        public init(id: String, address: String, zone: String = "", tokens: [UInt64], incarnation: UInt64,
                    heartbeat: UInt64 = 0, leaving: Bool = false) {
            self.id = id
            self.address = address
            self.zone = zone
            self.tokens = tokens
            self.incarnation = incarnation
            self.heartbeat = heartbeat
            self.leaving = leaving
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
        public private(set) var records: [String: Record]
        /// Each other member's failure detector, fed when its heartbeat advances.
        private var detectors: [String: PhiAccrualDetector] = [:]
        private var random: SplitMix64
        private var ticks: UInt64 = 0

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
        }

        /// Advances this node's heartbeat; says whom to gossip with now.
        public mutating func tick(nowMillis: Int64) -> [Directive] {
            ticks += 1
            records[selfID]!.heartbeat += 1
            let others = records.keys.filter { $0 != selfID }.sorted()
            let live = others.filter { status(of: $0, nowMillis: nowMillis) != .down }
            let down = others.filter { status(of: $0, nowMillis: nowMillis) == .down }
            var targets: [String] = []
            for _ in 0..<min(settings.fanout, live.count) {
                let pick = live[Int(random.next() % UInt64(live.count))]
                if !targets.contains(pick) { targets.append(pick) }
            }
            // Now and then, a down member: when a partition heals it answers and comes back.
            if !down.isEmpty && ticks % 5 == 0 {
                targets.append(down[Int(random.next() % UInt64(down.count))])
            }
            return targets.map { .gossip(id: $0, address: records[$0]!.address) }
        }

        /// Takes in gossiped records; says to publish the view when the set of members or
        /// their tokens changed.
        @discardableResult
        public mutating func merge(_ incoming: [Record], nowMillis: Int64) -> [Directive] {
            var ringChanged = false
            for record in incoming {
                if record.id == selfID {
                    // Others may hold an older incarnation of us; ours is the truth.
                    continue
                }
                guard let known = records[record.id] else {
                    records[record.id] = record
                    detectors[record.id] = PhiAccrualDetector(settings: settings.detector, nowMillis: nowMillis)
                    ringChanged = true
                    continue
                }
                if record.supersedes(known) {
                    var record = record
                    // Tokens, once allotted, stay: a restarted member's first record (before it
                    // has joined again) carries none and must not take it out of the ring.
                    if record.tokens.isEmpty { record.tokens = known.tokens }
                    if record.tokens != known.tokens || record.address != known.address || record.zone != known.zone {
                        ringChanged = true
                    }
                    records[record.id] = record
                    heard(from: record.id, restarted: record.incarnation != known.incarnation, nowMillis: nowMillis)
                }
            }
            return ringChanged ? [.publishView] : []
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
            records[selfID]!.leaving = true
            records[selfID]!.heartbeat += 1
        }

        public func status(of id: String, nowMillis: Int64) -> Status {
            guard let record = records[id] else { return .down }
            if id == selfID { return record.leaving ? .leaving : (record.tokens.isEmpty ? .joining : .up) }
            if let detector = detectors[id], detector.convicts(nowMillis: nowMillis) {
                // φ only grows while no heartbeat comes, so this asks whether it was already
                // convicted a whole suspicion period ago.
                return detector.convicts(nowMillis: nowMillis - settings.suspicionMillis) ? .down : .suspect
            }
            if record.leaving { return .leaving }
            return record.tokens.isEmpty ? .joining : .up
        }

        /// Whether `id` should be sent requests (up or leaving; suspect counts as not alive).
        public func isAlive(_ id: String, nowMillis: Int64) -> Bool {
            switch status(of: id, nowMillis: nowMillis) {
            case .up, .leaving, .joining: true
            case .suspect, .down: false
            }
        }

        /// The ring of every member with tokens, down ones included (their replicas serve for them).
        public var ring: Ring {
            let members = records.values.filter { !$0.tokens.isEmpty }.map(\.ringMember)
            return Ring(members: members, epoch: Self.epoch(of: members))
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
