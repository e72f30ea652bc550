@testable import AeroCacheCore
import Testing

@Suite struct RingTests {
    /// Members joining one at a time, each taking tokens from the ring it found.
    static func grow(to count: Int, tokens: Int = 256, zones: [String] = [""], replicas: Int = 3) -> [Ring.Member] {
        var members: [Ring.Member] = []
        for index in 0..<count {
            let id = "node-\(index)"
            let zone = zones[index % zones.count]
            let allocated = TokenAllocator.tokens(for: id, joining: members, count: tokens, replicas: replicas, zone: zone)
            members.append(Ring.Member(id: id, address: "127.0.0.1:\(7400 + index)", zone: zone, tokens: allocated))
        }
        return members
    }

    /// Joins are sequential, so the first n members of a 32-member cluster are an n-member cluster.
    static let cluster = grow(to: 32)
    static func members(_ count: Int) -> [Ring.Member] { Array(cluster.prefix(count)) }

    static let keys = (0..<100_000).map { "key:\($0)" }
    static let hashes = keys.map { XXHash64.hash($0) }

    func keysPerNode(_ ring: Ring, replicas: Int, keys: Int = 100_000) -> [String: Int] {
        var counts = [Int](repeating: 0, count: ring.members.count)
        for hash in Self.hashes.prefix(keys) {
            if replicas == 1 {
                counts[Int(ring.owners[ring.firstTokenIndex(atOrAfter: hash)])] += 1
            } else {
                for index in ring.preferenceIndices(for: hash, count: replicas) { counts[index] += 1 }
            }
        }
        return Dictionary(uniqueKeysWithValues: zip(ring.members.map(\.id), counts))
    }

    @Test(arguments: [3, 4, 5, 8, 12, 16, 24, 32])
    func keysSpreadEvenly(nodes: Int) {
        let ring = Ring(members: Self.members(nodes))
        let primary = keysPerNode(ring, replicas: 1)
        let mean = Double(Self.keys.count) / Double(nodes)
        let worst = Double(primary.values.max() ?? 0) / mean
        #expect(primary.count == nodes)
        #expect(worst <= 1.10, "max/mean primary keys per node = \(worst) with \(nodes) nodes")
        // Replica sets are checked on 20k keys: enough for the figure, and debug builds are slow.
        let replicated = keysPerNode(ring, replicas: 3, keys: 20_000)
        let replicaWorst = Double(replicated.values.max() ?? 0) / (Double(20_000) / Double(nodes) * 3)
        #expect(replicaWorst <= 1.15, "max/mean replica keys per node = \(replicaWorst) with \(nodes) nodes")
    }

    @Test(arguments: [3, 5, 9, 16, 31])
    func addingANodeMovesItsShare(nodes: Int) {
        let before = Self.grow(to: nodes)
        let after = Self.members(nodes + 1)
        #expect(Array(after.prefix(nodes)) == before, "existing members keep their tokens")
        let old = Ring(members: before)
        let new = Ring(members: after)
        let owner = { (ring: Ring, hash: UInt64) in ring.members[Int(ring.owners[ring.firstTokenIndex(atOrAfter: hash)])].id }
        let moved = Self.hashes.filter { owner(old, $0) != owner(new, $0) }
        let fraction = Double(moved.count) / Double(Self.keys.count)
        let expected = 1 / Double(nodes + 1)
        #expect(abs(fraction - expected) <= expected * 0.10, "moved \(fraction), expected \(expected)")
        #expect(moved.allSatisfy { owner(new, $0) == "node-\(nodes)" }, "keys move only to the new node")
    }

    /// The share of the hash space `id` holds as one of `replicas` replicas, range by range.
    static func replicaShare(of id: String, in ring: Ring, replicas: Int) -> Double {
        guard let index = ring.members.firstIndex(where: { $0.id == id }) else { return 0 }
        var share = 0.0
        for (position, token) in ring.tokens.enumerated() where ring.preferenceIndices(for: token, count: replicas).contains(index) {
            share += Double(token &- ring.tokens[position == 0 ? ring.tokens.count - 1 : position - 1]) / 18_446_744_073_709_551_616.0
        }
        return share
    }

    @Test(arguments: [3, 4, 7])
    func theTrackerCountsANewcomersReplicaShareExactly(existing: Int) {
        let members = Self.members(existing + 1)
        var ring: [(token: UInt64, owner: Int)] = []
        for (index, member) in members.prefix(existing).enumerated() {
            for token in member.tokens { ring.append((token, index)) }
        }
        var tracker = ReplicaShareTracker(existing: ring, newcomer: existing, replicas: 3)
        for (added, token) in members[existing].tokens.enumerated() {
            tracker.add(token)
            // Checked along the way, when few tokens overlap, and at the end.
            if added == 10 || added == members[existing].tokens.count - 1 {
                var partial = members
                partial[existing].tokens = Array(members[existing].tokens.prefix(added + 1))
                let exact = Self.replicaShare(of: members[existing].id, in: Ring(members: partial), replicas: 3)
                #expect(abs(tracker.share / 18_446_744_073_709_551_616.0 - exact) < 1e-9, "after \(added + 1) tokens")
            }
        }
        // And what the allocator steered it to: replicas / (n + 1), within 5%.
        #expect(abs(tracker.share / 18_446_744_073_709_551_616.0 / (3 / Double(existing + 1)) - 1) < 0.05)
    }

    @Test func preferenceListsAreDistinctAndStable() {
        let ring = Ring(members: Self.members(5))
        for key in Self.keys.prefix(2_000) {
            let owners = ring.preferenceList(forKey: key, count: 3).map(\.id)
            #expect(Set(owners).count == 3)
        }
        #expect(ring.preferenceList(forKey: "k", count: 9).count == 5, "never more than the members")
        let shuffled = Ring(members: ring.members.shuffled())
        #expect(shuffled.preferenceList(forKey: "user:1", count: 3) == ring.preferenceList(forKey: "user:1", count: 3),
                "the ring does not depend on the order members are listed in")
        let shares = ring.primaryShares()
        #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9)
    }

    @Test func zonesAreSpreadFirst() {
        let ring = Ring(members: Self.grow(to: 6, zones: ["a", "b", "c"]))
        for key in Self.keys.prefix(2_000) {
            let zones = ring.preferenceList(forKey: key, count: 3).map(\.zone)
            #expect(Set(zones).count == 3, "\(key): \(zones)")
        }
    }

    @Test func emptyAndSingleMemberRings() {
        #expect(Ring(members: []).preferenceList(forKey: "k", count: 3).isEmpty)
        let one = Ring(members: Self.grow(to: 1))
        #expect(one.preferenceList(forKey: "k", count: 3).map(\.id) == ["node-0"])
        #expect(abs((one.primaryShares()["node-0"] ?? 0) - 1) < 1e-9)
    }
}
