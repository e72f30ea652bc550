/// What a ring change moves: the ranges whose preference lists differ between two rings, each
/// with the members that held it before and hold it after.
///
/// Both rings' tokens cut the hash space into elementary ranges; within one, every hash has the
/// same preference list in each ring. A join, a decommission or a remove is a change from the
/// ring without the member to the ring with it (or back), so the same function plans all
/// three: each member in ``Change/gained`` streams the range from one of ``Change/before``
/// (the first live one: a leaving node holds everything it owned; a removed one holds nothing
/// anyone can read), and each member in ``Change/lost`` drops it once the gainers have it.
public enum RangeMovement {
    /// One elementary range whose preference list changed.
    public struct Change: Sendable, Hashable {
        /// Key hashes in `start ..< start + width` (wrapping; width 0: the whole ring), as a
        /// ``DigestPiece`` counts them: `start` is the previous token + 1.
        public var start: UInt64
        public var width: UInt64
        /// Member ids of the preference list before and after, in preference order.
        public var before: [String]
        public var after: [String]

        public init(start: UInt64, width: UInt64, before: [String], after: [String]) {
            self.start = start
            self.width = width
            self.before = before
            self.after = after
        }

        /// Members that hold the range after and did not before: they must receive its data.
        public var gained: [String] { after.filter { !before.contains($0) } }
        /// Members that held the range before and no longer do: they may drop it.
        public var lost: [String] { before.filter { !after.contains($0) } }

        /// Whether `hash` falls in this range.
        public func contains(_ hash: UInt64) -> Bool {
            width == 0 || hash &- start < width
        }
    }

    /// The ranges whose replica sets (the first `replicationFactor` members) differ between
    /// `old` and `new`, in ring order; a list that only changed order moves nothing and is not
    /// one. Empty when either ring is.
    public static func changes(from old: Ring, to new: Ring, replicationFactor: Int) -> [Change] {
        guard !old.isEmpty && !new.isEmpty else { return [] }
        let bounds = Array(Set(old.tokens).union(new.tokens)).sorted()
        var changes: [Change] = []
        for (index, end) in bounds.enumerated() {
            let previous = bounds[index == 0 ? bounds.count - 1 : index - 1]
            // Every hash in (previous, end] has the preference list of `end` in both rings.
            let before = old.preferenceIndices(for: end, count: replicationFactor).map { old.members[$0].id }
            let after = new.preferenceIndices(for: end, count: replicationFactor).map { new.members[$0].id }
            guard Set(before) != Set(after) else { continue }
            let change = Change(start: previous &+ 1, width: bounds.count == 1 ? 0 : end &- previous,
                                before: before, after: after)
            // Neighbours with the same lists make one range.
            if let last = changes.last, last.before == before, last.after == after, last.start &+ last.width == change.start {
                changes[changes.count - 1].width &+= change.width
            } else {
                changes.append(change)
            }
        }
        return changes
    }
}
