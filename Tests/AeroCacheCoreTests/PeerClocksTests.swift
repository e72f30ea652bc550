import AeroCacheCore
import Testing

@Suite struct PeerClocksTests {
    @Test func aNodeWhoseClockIsOffFromMostPeersIsTold() {
        var clocks = PeerClocks()
        let now: Int64 = 1_000_000
        // This node reads 300 s ahead of both peers (round trips of 2 ms).
        clocks.observe(peer: "a", peerClock: now - 300_000, sentAt: now - 2, receivedAt: now)
        clocks.observe(peer: "b", peerClock: now - 300_001, sentAt: now - 2, receivedAt: now)
        let problem = clocks.problem(alivePeers: ["a", "b"], maxSkewMillis: 2_000, nowMillis: now)
        #expect(problem?.contains("ahead of 2 of its 2 peers") == true, "\(problem ?? "none")")
    }

    @Test func oneOddPeerOrAStaleMeasureIsNoProblem() {
        var clocks = PeerClocks()
        let now: Int64 = 1_000_000
        clocks.observe(peer: "a", peerClock: now + 300_000, sentAt: now - 2, receivedAt: now)  // a's clock is off
        clocks.observe(peer: "b", peerClock: now, sentAt: now - 2, receivedAt: now)
        #expect(clocks.problem(alivePeers: ["a", "b"], maxSkewMillis: 2_000, nowMillis: now) == nil)
        // Two members: one disagreeing peer is not a majority of the two.
        #expect(clocks.problem(alivePeers: ["a"], maxSkewMillis: 2_000, nowMillis: now) == nil)
        var stale = PeerClocks()
        stale.observe(peer: "a", peerClock: now - 300_000, sentAt: now - 2, receivedAt: now)
        stale.observe(peer: "b", peerClock: now - 300_000, sentAt: now - 2, receivedAt: now)
        #expect(stale.problem(alivePeers: ["a", "b"], maxSkewMillis: 2_000, nowMillis: now + PeerClocks.freshnessMillis + 1) == nil,
                "old measures say nothing")
    }
}
