import AeroCacheCore
import Testing

/// Every decision of the routing core (``ClusterView/route(key:forwarded:)``, the write and
/// read checks, the forwarding order) and of ``QuorumTally``, without a node.
@Suite struct RoutingTests {
    /// Five members with eight tokens each, from a fixed seed.
    private static let members: [Ring.Member] = {
        var random = SplitMix64(seed: 7)
        return (0..<5).map { index in
            Ring.Member(id: "n\(index)", address: "127.0.0.1:\(7000 + index)",
                        tokens: (0..<8).map { _ in random.next() })
        }
    }()

    private func view(selfID: String = "n0", members: [Ring.Member] = members, alive: Set<String>? = nil,
                      replicationFactor: Int = 3, clocks: ClockCheck = ClockCheck()) -> ClusterView {
        let alive = alive ?? Set(members.map(\.id))
        return ClusterView(selfID: selfID, ring: Ring(members: members), alive: alive,
                           statuses: members.map { ($0.id, $0.address, alive.contains($0.id) ? .up : .down) },
                           replicationFactor: replicationFactor, isJoined: true, clocks: clocks)
    }

    /// A key whose replicas include `n0` (`holds`) or not.
    private func key(heldBySelf holds: Bool, in view: ClusterView) -> String {
        (0...).lazy.map { "key-\($0)" }.first { view.holdsReplica(ofKey: $0) == holds }!
    }

    @Test func aReplicaCoordinatesWithTheOtherReplicas() throws {
        let view = view()
        let key = key(heldBySelf: true, in: view)
        let replicas = view.replicas(forKey: key)
        let route = try view.route(key: key, forwarded: false)
        #expect(route == .local(others: replicas.filter { $0.id != "n0" }, replicas: 3, selfIsReplica: true))
    }

    @Test func aNonReplicaForwardsToTheFirstLiveReplica() throws {
        let all = view()
        let key = key(heldBySelf: false, in: all)
        let replicas = all.replicas(forKey: key)
        #expect(try all.route(key: key, forwarded: false) == .forward(to: replicas[0]))
        let firstDown = view(alive: Set(Self.members.map(\.id)).subtracting([replicas[0].id]))
        #expect(try firstDown.route(key: key, forwarded: false) == .forward(to: replicas[1]))
        let allDown = view(alive: ["n0"])
        #expect(throws: RoutingRefusal.noReplicaAlive(replicas: 3)) { try allDown.route(key: key, forwarded: false) }
    }

    @Test func aForwardedCallRunsHereWhateverThisNodesRingSays() throws {
        let view = view()
        let key = key(heldBySelf: false, in: view)
        #expect(try view.route(key: key, forwarded: true)
            == .local(others: view.replicas(forKey: key), replicas: 3, selfIsReplica: false))
    }

    @Test func whenEveryMemberIsAReplicaNoRingWalkIsNeeded() throws {
        let three = Array(Self.members.prefix(3))
        let view = view(members: three, replicationFactor: 3)
        #expect(try view.route(key: "anything", forwarded: false)
            == .local(others: Array(three.dropFirst()), replicas: 3, selfIsReplica: true))
    }

    @Test func aRingWithoutTokensRefuses() {
        let view = view(members: [])
        #expect(throws: RoutingRefusal.noMemberHasTokens) { try view.route(key: "k", forwarded: false) }
    }

    @Test func writesNeedEnoughLiveReplicasAndAClockInStep() throws {
        let others = Array(Self.members[1...2])
        try view().checkWritable(others, needed: 2, replicas: 3, nowMillis: 0, monotonicMillis: 0)
        let oneDown = view(alive: ["n0", "n1", "n3", "n4"])
        try oneDown.checkWritable(others, needed: 1, replicas: 3, nowMillis: 0, monotonicMillis: 0)
        #expect(throws: RoutingRefusal.tooFewReplicasAlive(alive: 2, replicas: 3, needed: 3, reading: false)) {
            try oneDown.checkWritable(others, needed: 2, replicas: 3, nowMillis: 0, monotonicMillis: 0)
        }
        // Both peers measured in step; then this node's wall clock jumps 5 minutes ahead, a
        // second later by the monotonic clock: refused at once, before any new measure.
        var measured = PeerClocks()
        let wall: Int64 = 1_000_000_000
        for peer in ["n1", "n2"] { measured.observe(peer: peer, peerClock: wall, sentAt: 498, receivedAt: 502) }
        let stepped = view(clocks: measured.check(maxSkewMillis: 2_000, nowMillis: wall + 2, monotonicMillis: 502))
        try stepped.checkWritable(others, needed: 0, replicas: 3, nowMillis: wall + 1_000, monotonicMillis: 1_500)
        let refusal = #expect(throws: RoutingRefusal.self) {
            try stepped.checkWritable(others, needed: 0, replicas: 3, nowMillis: wall + 301_000, monotonicMillis: 1_500)
        }
        #expect(refusal.map { "\($0)" }?.contains("jumped 300000 ms ahead") == true, "\(String(describing: refusal))")
        let readers = try oneDown.checkAlive(others, needed: 1, replicas: 3, reading: true)
        #expect(readers == [Self.members[1]])
        #expect(RoutingRefusal.tooFewReplicasAlive(alive: 1, replicas: 3, needed: 2, reading: true).description
            == "1 of 3 replicas are alive; the read needs 2")
    }

    @Test func aForwardGoesToEachLiveReplicaOnceAndStopsHere() {
        let all = view()
        let elsewhere = key(heldBySelf: false, in: all)
        let replicas = all.replicas(forKey: elsewhere).map(\.address)
        #expect(all.forwardingOrder(forKey: elsewhere, first: replicas[1])
            == [.peer(address: replicas[1]), .peer(address: replicas[0]), .peer(address: replicas[2])])
        let held = key(heldBySelf: true, in: all)
        let order = all.forwardingOrder(forKey: held, first: "10.0.0.9:1")
        #expect(order.first == .peer(address: "10.0.0.9:1"))
        #expect(order.last == .here)
        #expect(!order.contains(.peer(address: Self.members[0].address)))
    }

    @Test func othersAcknowledgeOneLessWhenThisNodeIsAReplica() {
        #expect(Consistency.quorum.requiredFromOthers(of: 3, selfIsReplica: true) == 1)
        #expect(Consistency.quorum.requiredFromOthers(of: 3, selfIsReplica: false) == 2)
        #expect(Consistency.all.requiredFromOthers(of: 3, selfIsReplica: true) == 2)
        #expect(Consistency.one.requiredFromOthers(of: 3, selfIsReplica: true) == 0)
    }
}

@Suite struct QuorumTallyTests {
    private func met(_ decision: QuorumTally<Int>.Decision) -> [Int]? {
        if case .met(let answers) = decision { return answers }
        return nil
    }

    private func failed(_ decision: QuorumTally<Int>.Decision) -> Int? {
        if case .failed(let answered) = decision { return answered }
        return nil
    }

    private func isPending(_ decision: QuorumTally<Int>.Decision) -> Bool {
        if case .pending = decision { return true }
        return false
    }

    @Test func itIsMetByTheNeededAnswerAndSaysSoOnce() {
        var tally = QuorumTally<Int>(needed: 2, total: 3)
        #expect(isPending(tally.record(1)))
        #expect(met(tally.record(2)) == [1, 2])
        #expect(tally.isDecided)
        #expect(!tally.isComplete)
        #expect(isPending(tally.record(3)))  // told once
        #expect(met(tally.decision) == [1, 2, 3])
        #expect(tally.isComplete)
    }

    @Test func itFailsAsSoonAsTheNeededCanNoLongerAnswer() {
        var tally = QuorumTally<Int>(needed: 2, total: 3)
        #expect(isPending(tally.record(nil)))
        #expect(isPending(tally.record(7)))
        var failing = QuorumTally<Int>(needed: 2, total: 3)
        _ = failing.record(5)
        _ = failing.record(nil)
        #expect(failed(failing.record(nil)) == 1)
        #expect(isPending(failing.record(nil)))
        #expect(failing.isComplete)
    }

    @Test func successesWithoutAnAnswerCountButAreNotKept() {
        var tally = QuorumTally<Int>(needed: 2, total: 3)
        #expect(isPending(tally.succeeded()))
        #expect(met(tally.succeeded(keeping: 9)) == [9])
        #expect(tally.answered == 2)
        #expect(isPending(tally.failed()))
        #expect(tally.isComplete)
    }

    @Test func nothingNeededIsMetAtOnceAndAWaiterTakesADecisionMadeBeforeIt() {
        var none = QuorumTally<Int>(needed: 0, total: 2)
        #expect(met(none.decideOnce()) == [])
        #expect(isPending(none.decideOnce()))
        var impossible = QuorumTally<Int>(needed: 3, total: 2)
        #expect(failed(impossible.decideOnce()) == 0)
    }

    @Test func randomReplyOrdersAgreeWithCounting() {
        var random = SplitMix64(seed: 42)
        for _ in 0..<500 {
            let total = Int(random.next() % 6) + 1
            let needed = Int(random.next() % UInt64(total + 1))
            var tally = QuorumTally<Int>(needed: needed, total: total)
            var decisions = 0
            var answered = 0, failures = 0
            if !isPending(tally.decideOnce()) { decisions += 1 }
            var kept = 0
            for index in 0..<total {
                let ok = random.next() % 2 == 0
                // A success keeps its answer (a read, a counter write) or not (a plain write).
                let keeps = random.next() % 2 == 0
                if ok { answered += 1 } else { failures += 1 }
                if ok && keeps { kept += 1 }
                let decision = ok ? tally.succeeded(keeping: keeps ? index : nil) : tally.failed()
                if let answers = met(decision) {
                    #expect(answered == needed && tally.answered == needed)
                    #expect(answers.count == kept)
                    decisions += 1
                } else if let count = failed(decision) {
                    #expect(total - failures == needed - 1)
                    #expect(count == answered)
                    decisions += 1
                }
            }
            #expect(decisions == 1)
            #expect(tally.isComplete)
        }
    }
}
