@testable import AeroCacheCore
import Testing

/// The ranges a join, a decommission and a remove move: exactly those whose replica sets
/// change, each from members that hold it to members that gain it, in the ideal amount.
@Suite struct RangeMovementTests {
    static let replicas = 3
    static let space = 18_446_744_073_709_551_616.0

    /// Random key hashes to check the plan against the rings themselves.
    static let hashes: [UInt64] = {
        var random = SplitMix64(seed: 11)
        return (0..<20_000).map { _ in random.next() }
    }()

    func replicaSet(_ ring: Ring, _ hash: UInt64) -> Set<String> {
        Set(ring.preferenceIndices(for: hash, count: Self.replicas).map { ring.members[$0].id })
    }

    /// Checks `changes` against the two rings for every sample hash: a hash lies in a change
    /// exactly when its replica set differs, and the change says how.
    func verify(_ changes: [RangeMovement.Change], from old: Ring, to new: Ring) {
        for hash in Self.hashes {
            let covering = changes.filter { $0.contains(hash) }
            let before = replicaSet(old, hash)
            let after = replicaSet(new, hash)
            if before == after {
                #expect(covering.isEmpty, "hash \(hash) moves though its replicas stay \(before)")
            } else {
                #expect(covering.count == 1, "hash \(hash) changes replicas but lies in \(covering.count) changes")
                guard let change = covering.first else { continue }
                #expect(Set(change.before) == before && Set(change.after) == after)
                // What a member holds after applying the change is what the new ring says.
                #expect(before.subtracting(change.lost).union(change.gained) == after)
            }
        }
        for change in changes {
            #expect(!change.gained.isEmpty || !change.lost.isEmpty)
            #expect(change.gained.allSatisfy { !change.before.contains($0) }, "a gainer already held \(change)")
            #expect(!change.before.isEmpty, "nobody to stream \(change) from")
        }
        // Ranges are disjoint and in ring order.
        for (first, second) in zip(changes, changes.dropFirst()) {
            #expect(first.start &+ first.width <= second.start || second.start < first.start)
        }
    }

    /// Copies that change hands, in units of the whole hash space.
    func movedShare(_ changes: [RangeMovement.Change]) -> Double {
        changes.reduce(0) { $0 + Double($1.width) / Self.space * Double($1.gained.count) }
    }

    @Test(arguments: [3, 4, 5, 8])
    func aJoinMovesOnlyToTheNewcomerAndItsIdealShare(existing: Int) {
        let old = Ring(members: RingTests.members(existing))
        let new = Ring(members: RingTests.members(existing + 1))
        let newcomer = "node-\(existing)"
        let changes = RangeMovement.changes(from: old, to: new, replicationFactor: Self.replicas)
        verify(changes, from: old, to: new)
        #expect(changes.allSatisfy { $0.gained == [newcomer] && $0.lost.count == 1 })
        // The newcomer ends up holding replicas/(n+1) of the space, every copy of it streamed.
        let ideal = Double(Self.replicas) / Double(existing + 1)
        expectNear(movedShare(changes), ideal)
    }

    /// Moved copies within 10% of the ideal.
    func expectNear(_ moved: Double, _ ideal: Double) {
        #expect(abs(moved / ideal - 1) <= 0.10, "moved \(moved) against \(ideal)")
    }

    @Test(arguments: [4, 5, 8])
    func aDecommissionOrRemoveHandsOverExactlyTheLeaversRanges(count: Int) {
        let members = RingTests.members(count)
        for leaver in [members[0].id, members[count - 1].id] {
            let old = Ring(members: members)
            let new = Ring(members: members.filter { $0.id != leaver })
            let changes = RangeMovement.changes(from: old, to: new, replicationFactor: Self.replicas)
            verify(changes, from: old, to: new)
            #expect(changes.allSatisfy { $0.lost == [leaver] && $0.gained.count == 1 && !$0.after.contains(leaver) })
            // Every range the leaver held moves once; the survivors that can stream it (on a
            // remove, the leaver is dead) are the other members of its old list.
            expectNear(movedShare(changes), Double(Self.replicas) / Double(count))
            #expect(changes.allSatisfy { $0.before.filter { $0 != leaver }.count == Self.replicas - 1 })
        }
    }

    @Test func aJoinWithZonesStillMovesExactlyWhatChanged() {
        let members = RingTests.grow(to: 6, zones: ["a", "b", "c"])
        let old = Ring(members: Array(members.prefix(5)))
        let new = Ring(members: members)
        let changes = RangeMovement.changes(from: old, to: new, replicationFactor: Self.replicas)
        verify(changes, from: old, to: new)
        #expect(changes.allSatisfy { $0.gained == ["node-5"] })
    }

    @Test func equalRingsMoveNothingAndAFirstMemberHasNothingToReceive() {
        let ring = Ring(members: RingTests.members(4))
        #expect(RangeMovement.changes(from: ring, to: ring, replicationFactor: 3).isEmpty)
        #expect(RangeMovement.changes(from: Ring(members: []), to: ring, replicationFactor: 3).isEmpty)
    }

    @Test func fewerMembersThanReplicasMovesToEveryone() {
        // 2 members with N = 3: each holds everything; a third joining gains everything.
        let old = Ring(members: RingTests.members(2))
        let new = Ring(members: RingTests.members(3))
        let changes = RangeMovement.changes(from: old, to: new, replicationFactor: 3)
        verify(changes, from: old, to: new)
        #expect(abs(movedShare(changes) - 1) < 1e-9)
        #expect(changes.allSatisfy { $0.gained == ["node-2"] && $0.lost.isEmpty })
    }
}
