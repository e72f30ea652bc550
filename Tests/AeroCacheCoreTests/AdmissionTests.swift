import AeroCacheCore
import Testing

/// A seed admitting joiners and a node screening gossiped records (``Membership/Instance``).
@Suite struct AdmissionTests {
    private let tokensPerNode = 4
    private let now: Int64 = 1_700_000_000_000

    private func seed() -> Membership.Instance {
        let tokens = TokenAllocator.tokens(for: "seed", joining: [], count: tokensPerNode)
        return Membership.Instance(me: Membership.Record(id: "seed", address: "10.0.0.1:7400", tokens: tokens, incarnation: 1))
    }

    private func joiner(_ id: String, tokens: [UInt64] = [], incarnation: UInt64 = 2) -> Membership.Record {
        Membership.Record(id: id, address: "10.0.0.2:7400", tokens: tokens, incarnation: incarnation)
    }

    private func admit(_ record: Membership.Record, into instance: inout Membership.Instance) throws(JoinRefusal) -> Membership.Record {
        try instance.admit(record, tokensPerNode: tokensPerNode, replicationFactor: 3, nowMillis: now, maxClockSkewMillis: 2_000)
    }

    @Test func aNewJoinerIsAllottedTokensAndIsWrittenToBeforeItIsReadFrom() throws {
        var instance = seed()
        let admitted = try admit(joiner("a"), into: &instance)
        #expect(admitted.tokens.count == tokensPerNode)
        #expect(admitted.phase == .joining)
        #expect(Set(admitted.tokens).isDisjoint(with: instance.me.tokens))
        #expect(instance.ring.members.map(\.id) == ["seed"], "reads stay on the old owners")
        #expect(instance.futureRing.members.map(\.id).sorted() == ["a", "seed"], "writes reach the joiner")
        let view = ClusterView(instance, nowMillis: now, replicationFactor: 3)
        #expect(view.isJoined)
        #expect(view.alive == ["a", "seed"])
        #expect(!view.isSingleNode, "a write must not skip the joiner")
        #expect(view.pendingReplicas(forKey: "k").map(\.id) == ["a"])
        #expect(view.statuses.first { $0.id == "a" }?.status == .joining)
    }

    @Test func aRestartedMemberKeepsItsTokensAndRefillsInPlace() throws {
        var instance = seed()
        let first = try admit(joiner("a"), into: &instance)
        _ = try admit(joiner("b"), into: &instance)
        // a and b are up, then a restarts (a cache restarts empty).
        for id in ["a", "b"] {
            var up = instance.records[id]!
            up.phase = .normal
            up.heartbeat += 1
            instance.merge([up], nowMillis: now)
        }
        let again = try admit(joiner("a", incarnation: 3), into: &instance)
        #expect(again.tokens == first.tokens)
        #expect(again.incarnation == 3)
        #expect(again.phase == .refilling)
        let view = ClusterView(instance, nowMillis: now, replicationFactor: 3)
        #expect(view.ring.members.contains { $0.id == "a" }, "it keeps its place: nobody else stands in for it")
        #expect(view.unreadable == ["a"])
        // Reads of a key it holds go to the others, and count it out.
        guard case .local(let others, let replicas, let selfIsReplica) = try view.readRoute(key: "k", forwarded: false) else {
            Issue.record("the seed holds every key of three members")
            return
        }
        #expect(others.map(\.id) == ["b"] && replicas == 3 && selfIsReplica)
    }

    @Test func aJoinerThatRestartsBeforeItIsUpStaysJoining() throws {
        var instance = seed()
        let first = try admit(joiner("a"), into: &instance)
        let again = try admit(joiner("a", incarnation: 3), into: &instance)
        #expect(again.tokens == first.tokens && again.phase == .joining)
    }

    @Test func aMemberThatLeftForGoodIsANewcomerWhenItComesBack() throws {
        var instance = seed()
        var first = try admit(joiner("a"), into: &instance)
        first.phase = .left
        first.heartbeat += 1
        instance.merge([first], nowMillis: now)
        #expect(instance.ring.members.map(\.id) == ["seed"] && instance.futureRing.members.map(\.id) == ["seed"])
        #expect(!instance.currentIDs.contains("a"), "status no longer lists it")
        let again = try admit(joiner("a", incarnation: 3), into: &instance)
        #expect(again.phase == .joining)
    }

    @Test func joinersThatWouldBreakTheRingAreRefused() {
        var instance = seed()
        #expect(throws: JoinRefusal.sameIDAsSeed("seed")) { _ = try admit(joiner("seed"), into: &instance) }
        #expect(throws: JoinRefusal.badRecord("member id must be 1 to 256 bytes")) { _ = try admit(joiner(""), into: &instance) }
        #expect(throws: JoinRefusal.badRecord("member a has an incarnation from the future")) {
            _ = try admit(joiner("a", incarnation: UInt64(now + 10_000)), into: &instance)
        }
        #expect(throws: JoinRefusal.badRecord("member a has 2 tokens; members have 0 or 4")) {
            _ = try admit(joiner("a", tokens: [1, 2]), into: &instance)
        }
        // Two ids with one version number (the low 32 bits of their xxHash64), found by a
        // birthday search over `twin-N` (Tests/interop/test_small_findings.py does the same).
        #expect(Membership.versionNode(of: "twin-3861") == Membership.versionNode(of: "twin-66849"))
        var withTwin = seed()
        _ = try? admit(joiner("twin-3861"), into: &withTwin)
        #expect(throws: JoinRefusal.versionNumberTaken(joiner: "twin-66849", member: "twin-3861")) {
            _ = try admit(joiner("twin-66849"), into: &withTwin)
        }
        #expect(instance.records.count == 1)
    }

    @Test func screeningKeepsOutBadRecordsAndTheSecondOfTwoVersionNumbers() {
        let instance = seed()
        let good = joiner("a", tokens: [1, 2, 3, 4])
        let bad = Membership.Record(id: "b", address: "not an address", tokens: [], incarnation: 1)
        let (accepted, refused) = instance.screen([good, bad, good], tokensPerNode: tokensPerNode, nowMillis: now,
                                                  maxClockSkewMillis: 2_000)
        #expect(accepted == [good, good])
        #expect(refused == [.badRecord("member b has an address that is not HOST:PORT")])
        let twins = instance.screen([joiner("twin-3861"), joiner("twin-66849")], tokensPerNode: tokensPerNode,
                                    nowMillis: now, maxClockSkewMillis: 2_000)
        #expect(twins.accepted.map(\.id) == ["twin-3861"])
        #expect(twins.refused == [.versionNumberTaken(member: "twin-66849", by: "twin-3861")])
    }

    @Test func aNodeWhoseClockWentBackStillHearsTheMembersItKnows() {
        var instance = seed()
        let started = joiner("a", tokens: [1, 2, 3, 4], incarnation: UInt64(now))
        instance.merge([started], nowMillis: 0)
        // This node's wall clock is now 5 minutes back: a's incarnation looks 5 minutes ahead.
        let behind = now - 300_000
        var heartbeat = started
        heartbeat.heartbeat += 1
        let screened = instance.screen([heartbeat], tokensPerNode: tokensPerNode, nowMillis: behind, maxClockSkewMillis: 2_000)
        #expect(screened.accepted == [heartbeat], "the life it accepted before")
        var restarted = heartbeat
        restarted.incarnation += 1
        #expect(instance.screen([restarted], tokensPerNode: tokensPerNode, nowMillis: behind, maxClockSkewMillis: 2_000)
                    .refused == [.badRecord("member a has an incarnation from the future")], "a newer life is judged")
    }

    @Test func adoptingTokensJoinsThisNodeAndTellsOthers() {
        var instance = Membership.Instance(me: joiner("a"))
        #expect(!ClusterView(instance, nowMillis: now, replicationFactor: 3).isJoined)
        let heartbeat = instance.me.heartbeat
        instance.adoptTokens([5, 6, 7, 8], phase: .joining)
        #expect(instance.me.tokens == [5, 6, 7, 8])
        #expect(instance.me.heartbeat > heartbeat)  // newer: gossip carries it over the old record
        var measured = PeerClocks()
        measured.observe(peer: "b", peerClock: now - 300_000, sentAt: 8, receivedAt: 10)
        let clocks = measured.check(maxSkewMillis: 2_000, nowMillis: now, monotonicMillis: 10)
        #expect(ClusterView(instance, clocks: clocks, nowMillis: now, replicationFactor: 3).clocks == clocks)
    }
}
