import AeroCacheCore
import Testing

@Suite struct PeerClocksTests {
    /// Wall and monotonic readings for these tests: the wall clock reads `wall` when the
    /// monotonic one reads `monotonic`.
    let wall: Int64 = 1_700_000_000_000
    let monotonic: Int64 = 9_000

    @Test func aNodeWhoseClockIsOffFromMostPeersIsTold() {
        var clocks = PeerClocks()
        // This node reads 300 s ahead of both peers (round trips of 2 ms).
        clocks.observe(peer: "a", peerClock: wall - 300_000, sentAt: monotonic - 2, receivedAt: monotonic)
        clocks.observe(peer: "b", peerClock: wall - 300_001, sentAt: monotonic - 2, receivedAt: monotonic)
        let problem = clocks.check(maxSkewMillis: 2_000, nowMillis: wall, monotonicMillis: monotonic)
            .problem(nowMillis: wall, monotonicMillis: monotonic)
        #expect(problem?.contains("ahead of 2 of its 2 peers") == true, "\(problem ?? "none")")
    }

    @Test func thePeersClockIsWhatMostPeersRead() {
        var clocks = PeerClocks()
        #expect(clocks.peersClock(monotonicMillis: monotonic) == nil, "none measured")
        clocks.observe(peer: "a", peerClock: wall + 300_000, sentAt: monotonic - 2, receivedAt: monotonic)
        clocks.observe(peer: "b", peerClock: wall + 300_010, sentAt: monotonic - 2, receivedAt: monotonic)
        // Read 1 ms before the answers came.
        #expect(clocks.peersClock(monotonicMillis: monotonic) == wall + 300_001)
        var oneAhead = PeerClocks()
        oneAhead.observe(peer: "a", peerClock: wall + 300_000, sentAt: monotonic - 2, receivedAt: monotonic)
        oneAhead.observe(peer: "b", peerClock: wall, sentAt: monotonic - 2, receivedAt: monotonic)
        #expect(oneAhead.peersClock(monotonicMillis: monotonic) == wall + 1, "one peer ahead decides nothing")
        #expect(oneAhead.peersClock(monotonicMillis: monotonic + PeerClocks.freshnessMillis + 1) == nil, "stale measures")
    }

    @Test func oneOddPeerAStaleMeasureOrAStalledRoundTripIsNoProblem() {
        var clocks = PeerClocks()
        clocks.observe(peer: "a", peerClock: wall + 300_000, sentAt: monotonic - 2, receivedAt: monotonic)  // a's clock is off
        clocks.observe(peer: "b", peerClock: wall, sentAt: monotonic - 2, receivedAt: monotonic)
        #expect(clocks.check(maxSkewMillis: 2_000, nowMillis: wall, monotonicMillis: monotonic)
                    .problem(nowMillis: wall, monotonicMillis: monotonic) == nil)
        var stale = PeerClocks()
        stale.observe(peer: "a", peerClock: wall - 300_000, sentAt: monotonic - 2, receivedAt: monotonic)
        stale.observe(peer: "b", peerClock: wall - 300_000, sentAt: monotonic - 2, receivedAt: monotonic)
        let later = monotonic + PeerClocks.freshnessMillis + 1
        #expect(stale.check(maxSkewMillis: 2_000, nowMillis: wall + PeerClocks.freshnessMillis + 1, monotonicMillis: later)
                    .problem(nowMillis: wall + PeerClocks.freshnessMillis + 1, monotonicMillis: later) == nil,
                "old measures say nothing")
        var stalled = PeerClocks()
        // An answer read 7.5 s after it was sent (a paused process) says little of when the peer read its clock.
        stalled.observe(peer: "a", peerClock: wall - 300_000, sentAt: monotonic - 7_500, receivedAt: monotonic)
        stalled.observe(peer: "b", peerClock: wall - 300_000, sentAt: monotonic - 7_500, receivedAt: monotonic)
        #expect(stalled.check(maxSkewMillis: 2_000, nowMillis: wall, monotonicMillis: monotonic)
                    .problem(nowMillis: wall, monotonicMillis: monotonic) == nil)
    }

    /// A fault test found it: a wall clock that jumped between two gossip rounds stamped
    /// writes 5 minutes ahead until the next round trip measured it, and those won over later
    /// acknowledged writes. Measured on the monotonic clock, the jump shows at once, and comes
    /// right when the clock does.
    @Test func aWallClockThatJumpsAfterTheMeasureIsOutOfStepAtOnceAndInStepWhenItComesBack() {
        var clocks = PeerClocks()
        clocks.observe(peer: "a", peerClock: wall, sentAt: monotonic - 1, receivedAt: monotonic + 1)
        clocks.observe(peer: "b", peerClock: wall + 3, sentAt: monotonic - 1, receivedAt: monotonic + 1)
        let check = clocks.check(maxSkewMillis: 2_000, nowMillis: wall + 1, monotonicMillis: monotonic + 1)
        #expect(check.problem(nowMillis: wall + 700, monotonicMillis: monotonic + 700) == nil, "in step, 0.7 s on")
        let ahead = check.problem(nowMillis: wall + 300_700, monotonicMillis: monotonic + 700)
        #expect(ahead?.contains("jumped 300000 ms ahead") == true, "\(ahead ?? "none")")
        let behind = check.problem(nowMillis: wall - 299_300, monotonicMillis: monotonic + 700)
        #expect(behind?.contains("jumped 300000 ms back") == true, "\(behind ?? "none")")
        #expect(check.problem(nowMillis: wall + 1_200, monotonicMillis: monotonic + 1_200) == nil, "back in step")
    }

    /// With one peer (two nodes, or one of three down) no majority can say which clock is
    /// wrong; a jump of this node's own clock still shows.
    @Test func withOnePeerAJumpOfThisNodesClockStillShows() {
        var clocks = PeerClocks()
        clocks.observe(peer: "a", peerClock: wall, sentAt: monotonic - 1, receivedAt: monotonic + 1)
        let check = clocks.check(maxSkewMillis: 2_000, nowMillis: wall, monotonicMillis: monotonic)
        #expect(check.problem(nowMillis: wall + 500, monotonicMillis: monotonic + 500) == nil)
        #expect(check.problem(nowMillis: wall + 300_500, monotonicMillis: monotonic + 500) != nil)
        // Measured again after the jump: out of step with the peer, so the old anchor stays.
        var after = clocks
        after.observe(peer: "a", peerClock: wall + 600, sentAt: monotonic + 599, receivedAt: monotonic + 601)
        #expect(after.check(maxSkewMillis: 2_000, nowMillis: wall + 300_601, monotonicMillis: monotonic + 601)
                    .problem(nowMillis: wall + 300_700, monotonicMillis: monotonic + 700) != nil)
    }
}
