@testable import AeroCacheCore
import Testing

/// Several membership instances gossiping over a simulated network with a manual clock.
struct SimulatedCluster {
    var nodes: [String: Membership.Instance] = [:]
    var now: Int64 = 1_000_000
    var crashed = Set<String>()
    /// Pairs that cannot reach each other.
    var cut = Set<[String]>()

    init(size: Int) {
        for index in 0..<size {
            let id = "n\(index)"
            let me = Membership.Record(id: id, address: "10.0.0.\(index):7400", tokens: [UInt64(index) << 56], incarnation: 1)
            var instance = Membership.Instance(me: me, seed: UInt64(index + 1))
            if index > 0, let seed = nodes["n0"] { instance.merge([seed.me], nowMillis: now) }  // knows its seed
            nodes[id] = instance
        }
    }

    func reachable(_ a: String, _ b: String) -> Bool {
        !crashed.contains(a) && !crashed.contains(b) && !cut.contains([a, b].sorted())
    }

    /// One gossip round every 200 ms: each live node ticks and exchanges records with its targets.
    mutating func run(millis: Int64) {
        let end = now + millis
        while now < end {
            now += 200
            for id in nodes.keys.sorted() where !crashed.contains(id) {
                for case .gossip(let target, _) in nodes[id]!.tick(nowMillis: now) where reachable(id, target) {
                    let mine = Array(nodes[id]!.records.values)
                    nodes[target]!.merge(mine, nowMillis: now)
                    let theirs = Array(nodes[target]!.records.values)
                    nodes[id]!.merge(theirs, nowMillis: now)
                }
            }
        }
    }

    func view(of observer: String, about member: String) -> Membership.Status {
        nodes[observer]!.status(of: member, nowMillis: now)
    }

    func allSee(_ member: String, as status: Membership.Status, except: Set<String> = []) -> Bool {
        nodes.keys.filter { $0 != member && !except.contains($0) && !crashed.contains($0) }
            .allSatisfy { view(of: $0, about: member) == status }
    }
}

@Suite struct MembershipTests {
    @Test func joiningThroughASeedSpreadsToEveryone() {
        var cluster = SimulatedCluster(size: 8)
        cluster.run(millis: 3_000)
        for (id, node) in cluster.nodes {
            #expect(node.records.count == 8, "\(id) knows \(node.records.count)")
        }
        for member in cluster.nodes.keys { #expect(Bool(cluster.allSee(member, as: .up))) }
        let epochs = Set(cluster.nodes.values.map { $0.ring.epoch })
        #expect(epochs.count == 1, "every node computes the same ring")
    }

    @Test func aCrashedNodeIsSuspectedThenDownWithinFiveSeconds() {
        var cluster = SimulatedCluster(size: 5)
        cluster.run(millis: 3_000)
        cluster.crashed.insert("n3")
        cluster.run(millis: 1_000)
        #expect(Bool(cluster.allSee("n3", as: .up)), "a second of silence is within the forgiven pause")
        cluster.run(millis: 1_400)
        #expect(Bool(cluster.allSee("n3", as: .suspect)))
        cluster.run(millis: 1_400)
        #expect(Bool(cluster.allSee("n3", as: .down)), "down within 3.8 s of the crash")
        #expect(Bool(cluster.allSee("n1", as: .up)), "the others stay up")
        #expect(cluster.nodes["n0"]!.ring.members.count == 5, "a down member keeps its place in the ring")
    }

    /// Prints when each node suspects and convicts a crashed member (run with `--filter detectionTimeline`).
    @Test func detectionTimeline() {
        var cluster = SimulatedCluster(size: 5)
        cluster.run(millis: 3_000)
        cluster.crashed.insert("n3")
        let crashedAt = cluster.now
        var suspectAt: Int64?, downAt: Int64?
        while cluster.now - crashedAt < 10_000 && downAt == nil {
            cluster.run(millis: 200)
            if suspectAt == nil && cluster.allSee("n3", as: .suspect) { suspectAt = cluster.now - crashedAt }
            if cluster.allSee("n3", as: .down) { downAt = cluster.now - crashedAt }
        }
        print("all suspect after \(suspectAt ?? -1) ms, all down after \(downAt ?? -1) ms")
        #expect((downAt ?? .max) <= 5_000)
    }

    @Test func aBriefSilenceIsAFalseSuspicionThatClears() {
        var cluster = SimulatedCluster(size: 4)
        cluster.run(millis: 2_000)
        cluster.crashed.insert("n2")  // a long stall, say
        let stalledAt = cluster.now
        while !cluster.allSee("n2", as: .suspect) && cluster.now - stalledAt < 5_000 { cluster.run(millis: 200) }
        #expect(Bool(cluster.allSee("n2", as: .suspect)), "every other node suspects it before any convicts it")
        cluster.crashed.remove("n2")
        cluster.run(millis: 1_000)
        #expect(Bool(cluster.allSee("n2", as: .up)))
    }

    @Test func aPartitionHealsWithoutAnOperator() {
        var cluster = SimulatedCluster(size: 5)
        cluster.run(millis: 3_000)
        let left = ["n0", "n1"], right = ["n2", "n3", "n4"]
        for a in left { for b in right { cluster.cut.insert([a, b].sorted()) } }
        cluster.run(millis: 5_000)
        #expect(cluster.view(of: "n0", about: "n3") == .down)
        #expect(cluster.view(of: "n4", about: "n1") == .down)
        #expect(cluster.view(of: "n0", about: "n1") == .up)
        cluster.cut.removeAll()
        cluster.run(millis: 6_000)
        for member in cluster.nodes.keys { #expect(Bool(cluster.allSee(member, as: .up)), "\(member) after healing") }
    }

    @Test func aRestartedNodeWinsWithItsNewIncarnation() {
        var cluster = SimulatedCluster(size: 3)
        cluster.run(millis: 2_000)
        let old = cluster.nodes["n1"]!.me
        var restarted = Membership.Record(id: "n1", address: old.address, tokens: old.tokens, incarnation: old.incarnation + 1)
        restarted.heartbeat = 0
        var fresh = Membership.Instance(me: restarted, seed: 99)
        fresh.merge([cluster.nodes["n0"]!.me], nowMillis: cluster.now)
        cluster.nodes["n1"] = fresh
        cluster.run(millis: 2_000)
        #expect(cluster.nodes["n0"]!.records["n1"]?.incarnation == old.incarnation + 1)
        #expect(Bool(cluster.allSee("n1", as: .up)))
    }

    @Test func leavingAndJoiningStates() {
        var cluster = SimulatedCluster(size: 3)
        cluster.run(millis: 1_000)
        cluster.nodes["n2"]!.setLeaving()
        cluster.run(millis: 1_000)
        #expect(Bool(cluster.allSee("n2", as: .leaving)))
        let joiner = Membership.Record(id: "n9", address: "10.0.0.9:7400", tokens: [], incarnation: 1)
        var instance = cluster.nodes["n0"]!
        instance.merge([joiner], nowMillis: cluster.now)
        #expect(instance.status(of: "n9", nowMillis: cluster.now) == .joining)
        #expect(!instance.ring.members.contains { $0.id == "n9" }, "a member without tokens owns nothing yet")
    }

    @Test func aRemovedMemberLeavesEveryRingAndStaleGossipCannotBringItBack() {
        var cluster = SimulatedCluster(size: 4)
        cluster.run(millis: 1_000)
        let stale = cluster.nodes["n1"]!.records["n3"]!  // what gossip carried before it died
        cluster.crashed.insert("n3")
        cluster.run(millis: 6_000)
        #expect(Bool(cluster.allSee("n3", as: .down)))
        cluster.nodes["n0"]!.markRemoved("n3")
        cluster.run(millis: 2_000)
        for id in ["n0", "n1", "n2"] {
            let instance = cluster.nodes[id]!
            #expect(instance.records["n3"]?.phase == .removed, "\(id) heard of the removal")
            #expect(!instance.ring.members.contains { $0.id == "n3" } && !instance.futureRing.members.contains { $0.id == "n3" })
            #expect(!instance.currentIDs.contains("n3"))
        }
        cluster.nodes["n2"]!.merge([stale], nowMillis: cluster.now)
        #expect(cluster.nodes["n2"]!.records["n3"]?.phase == .removed, "an older record loses")
        // A node removed while cut off, not dead, beats on: its record overtakes the removal's.
        var outlived = stale
        outlived.heartbeat += 1_000_000
        cluster.nodes["n2"]!.merge([outlived], nowMillis: cluster.now)
        #expect(cluster.nodes["n2"]!.records["n3"]?.phase == .removed, "a removal sticks for the incarnation")
        // The other way round: a node that heard the member beat on past the removal's
        // heartbeat still takes the removal, and the member itself learns it must stop.
        var beyond = Membership.Instance(me: Membership.Record(id: "m", address: "10.0.0.8:7400", tokens: [9], incarnation: 1))
        _ = beyond.merge([outlived], nowMillis: cluster.now)
        let removal = cluster.nodes["n0"]!.records["n3"]!
        #expect(removal.heartbeat < outlived.heartbeat)
        _ = beyond.merge([removal], nowMillis: cluster.now)
        #expect(beyond.records["n3"]?.phase == .removed, "a removal beats any heartbeat of its incarnation")
        var removedItself = Membership.Instance(me: stale)
        #expect(removedItself.merge([removal], nowMillis: cluster.now).contains(.removedSelf))
        #expect(!removedItself.merge([stale], nowMillis: cluster.now).contains(.removedSelf))
        // A seed admits no run of it that was removed: only a restart joins again.
        var seed = cluster.nodes["n0"]!
        #expect(throws: JoinRefusal.removed("n3")) {
            _ = try seed.admit(outlived, tokensPerNode: 1, replicationFactor: 3, nowMillis: cluster.now, maxClockSkewMillis: 1_000_000)
        }
        var restarted = stale
        restarted.incarnation += 1
        restarted.tokens = []
        cluster.nodes["n2"]!.merge([restarted], nowMillis: cluster.now)
        #expect(cluster.nodes["n2"]!.records["n3"]?.phase == .normal, "a restart may come back (through a seed)")
        #expect(!cluster.nodes["n2"]!.ring.members.contains { $0.id == "n3" }, "without tokens until admitted again")
        // Nobody gossips with it any more, down or not.
        for _ in 0..<20 {
            #expect(!cluster.nodes["n0"]!.tick(nowMillis: cluster.now).contains { $0 == .gossip(id: "n3", address: stale.address) })
        }
    }

    @Test func tickAndMergeSayWhatTheShellDoes() {
        var instance = Membership.Instance(me: Membership.Record(id: "a", address: "10.0.0.1:7400", tokens: [1], incarnation: 1))
        #expect(instance.tick(nowMillis: 1_000).isEmpty, "nobody to gossip with")
        let b = Membership.Record(id: "b", address: "10.0.0.2:7400", tokens: [2], incarnation: 1)
        #expect(instance.merge([b], nowMillis: 1_000) == [.publishView])
        #expect(instance.merge([b], nowMillis: 1_100) == [], "nothing new")
        var newer = b
        newer.heartbeat += 1
        #expect(instance.merge([newer], nowMillis: 1_200) == [], "a heartbeat changes no view")
        newer.tokens = [3]
        newer.heartbeat += 1
        #expect(instance.merge([newer], nowMillis: 1_300) == [.publishView], "new tokens do")
        #expect(instance.tick(nowMillis: 1_400) == [.gossip(id: "b", address: "10.0.0.2:7400")])
    }

    /// A node started without seeds founds a cluster; if the first gossip that reaches it holds
    /// an older incarnation of it with tokens, it was a member restarted without seeds.
    @Test func aFoundingNodeThatWasAMemberTakesItsTokensBackAndRefills() {
        let old = Membership.Record(id: "a", address: "10.0.0.1:7400", tokens: [5, 6], incarnation: 1)
        let b = Membership.Record(id: "b", address: "10.0.0.2:7400", tokens: [2], incarnation: 1)
        func founder() -> Membership.Instance {
            var instance = Membership.Instance(me: Membership.Record(id: "a", address: "10.0.0.1:7400", tokens: [9], incarnation: 2))
            instance.founding = true
            return instance
        }
        var restarted = founder()
        #expect(restarted.merge([b], nowMillis: 900).isEmpty, "another cluster's members are not its own")
        #expect(restarted.founding && restarted.records["b"] == nil)
        let directives = restarted.merge([b, old], nowMillis: 1_000)
        #expect(directives.contains(.restartedWithoutSeeds) && directives.contains(.publishView))
        #expect(restarted.me.tokens == [5, 6] && restarted.me.phase == .refilling && restarted.me.incarnation == 2)
        #expect(restarted.records["b"] != nil, "the members come with the news")
        #expect(!restarted.merge([b, old], nowMillis: 1_100).contains(.restartedWithoutSeeds), "once")

        var joinerBefore = founder()
        var joining = old
        joining.phase = .joining
        _ = joinerBefore.merge([b, joining], nowMillis: 1_000)
        #expect(joinerBefore.me.phase == .joining, "a joiner that had not streamed yet stays one")

        // Founded alone (nobody reached it in time): its cluster reaching it later stops it.
        var late = founder()
        late.founding = false
        late.foundedAlone = true
        #expect(late.merge([b, old], nowMillis: 1_000) == [.foundedBesideItsCluster])
        #expect(late.records["b"] == nil && late.me.tokens == [9])

        var seeded = Membership.Instance(me: Membership.Record(id: "a", address: "10.0.0.1:7400", tokens: [9], incarnation: 2))
        #expect(!seeded.merge([b, old], nowMillis: 1_000).contains(.restartedWithoutSeeds), "a node with seeds joins instead")
        var removed = old
        removed.phase = .removed
        var refounded = founder()
        #expect(!refounded.merge([b, removed], nowMillis: 1_000).contains(.restartedWithoutSeeds), "a removed one founds anew")
    }

    /// A shell publishes snapshots from several tasks: the revision says which is newer.
    @Test func everyChangeRaisesTheRevisionAndNothingElseDoes() {
        var instance = Membership.Instance(me: Membership.Record(id: "a", address: "10.0.0.1:7400", tokens: [1], incarnation: 1))
        var revisions = [instance.revision]
        _ = instance.tick(nowMillis: 1_000)
        revisions.append(instance.revision)
        let b = Membership.Record(id: "b", address: "10.0.0.2:7400", tokens: [2], incarnation: 1)
        _ = instance.merge([b], nowMillis: 1_000)
        revisions.append(instance.revision)
        instance.setPhase(.leaving)
        revisions.append(instance.revision)
        instance.markRemoved("b")
        revisions.append(instance.revision)
        #expect(zip(revisions, revisions.dropFirst()).allSatisfy { $0 < $1 }, "\(revisions)")
        _ = (instance.ring, instance.futureRing, instance.currentIDs, instance.status(of: "b", nowMillis: 2_000))
        #expect(instance.revision == revisions.last, "reading changes nothing")
        #expect(ClusterView(instance, nowMillis: 2_000, replicationFactor: 3).revision == instance.revision)
    }
}
