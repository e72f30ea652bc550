/// Chooses a joining node's tokens so that every member ends up with an even share.
///
/// Random tokens spread each node's share by about 1/sqrt(V) (some 6% at 256), so in a
/// large cluster the busiest node lands well past 1.1× the mean. Instead, as Cassandra's
/// token allocation does, each new token takes a slice of a range of the currently most
/// loaded member, sized so that after all V tokens the newcomer holds 1/(n+1) of the ring
/// and the others have each given up their excess. The first member gets V evenly spaced
/// tokens. Tokens are chosen once, at join, and then travel with the member's record, so
/// the ring is a pure function of the member list.
public enum TokenAllocator {
    public static let defaultTokenCount = 256

    /// Tokens for `newMember` joining `existing` (which must not contain it), in a cluster
    /// that keeps `replicas` copies of each key.
    ///
    /// Which member gives up a slice is chosen by first-owner shares. Which of its ranges, by
    /// copies: where more members than `replicas` share the ring, the cut whose gain in the
    /// newcomer's replica share (``ReplicaShareTracker``) is nearest what it still lacks of
    /// `replicas / (n + 1)`, per token left. Cut by first-owner shares alone, a newcomer held
    /// fewer copies than its share (a 4th member of 3 with N = 3: 0.674 of the hash space as a
    /// replica, not 0.75; a 6th of 5: 0.462, not 0.5), and a join streams exactly those copies.
    ///
    /// Only where every member shares the newcomer's `zone`: preference lists that spread over
    /// zones first are not what the tracker counts, and there the cut is picked at random.
    public static func tokens(for newMember: String, joining existing: [Ring.Member],
                              count: Int = defaultTokenCount, replicas: Int = 1, zone: String = "") -> [UInt64] {
        precondition(count > 0)
        if existing.allSatisfy({ $0.tokens.isEmpty }) {
            let offset = XXHash64.hash(newMember)
            let step = UInt64.max / UInt64(count)
            return (0..<count).map { offset &+ UInt64($0) &* step }.sorted()
        }
        var ring: [(token: UInt64, owner: Int)] = []
        for (index, member) in existing.enumerated() {
            for token in member.tokens { ring.append((token, index)) }
        }
        ring.sort { $0.token < $1.token }
        let space = 18_446_744_073_709_551_616.0
        var load = [Double](repeating: 0, count: existing.count)
        // Per owner, its ranges: the index of the token ending each. A range is (starts[i], ring[i].token].
        var ranges = [[Int]](repeating: [], count: existing.count)
        var widths = [Double](repeating: 0, count: ring.count)
        var starts = [UInt64](repeating: 0, count: ring.count)
        for (index, entry) in ring.enumerated() {
            let previous = ring[index == 0 ? ring.count - 1 : index - 1].token
            starts[index] = previous
            widths[index] = ring.count == 1 ? space : Double(entry.token &- previous)
            load[entry.owner] += widths[index]
            ranges[entry.owner].append(index)
        }

        let target = space / Double(existing.count + 1)
        var taken = 0.0
        var chosen: [UInt64] = []
        chosen.reserveCapacity(count)
        // Which of the owner's ranges to cut is chosen pseudo-randomly (seeded by the newcomer's
        // id): always cutting the same neighbour would line replicas up in a regular pattern
        // and skew how many keys each node holds as a replica.
        var random = SplitMix64(seed: XXHash64.hash(newMember))
        let membersWithTokens = existing.filter { !$0.tokens.isEmpty }
        let oneZone = membersWithTokens.allSatisfy { $0.zone == zone }
        var tracker = replicas > 1 && membersWithTokens.count + 1 > replicas && oneZone
            ? ReplicaShareTracker(existing: ring, newcomer: existing.count, replicas: replicas) : nil
        let replicaTarget = space * Double(replicas) / Double(membersWithTokens.count + 1)
        for step in 0..<count {
            // The most loaded member gives up a slice of one of its wide ranges.
            var owner = -1
            for candidate in load.indices where !ranges[candidate].isEmpty && (owner < 0 || load[candidate] > load[owner]) {
                owner = candidate
            }
            guard owner >= 0 else { break }
            let wanted = (target - taken) / Double(count - step)
            let excess = load[owner] - target
            let slice0 = excess > 0 ? min(wanted, max(excess, wanted / 2)) : wanted
            // Among the ranges wide enough: the one whose cut brings the newcomer's replica share
            // nearest its course, or (without replicas to steer by) one picked at random. Fall
            // back to the widest.
            var end = -1
            var widest = -1
            var seen: UInt64 = 0
            var nearest = Double.infinity
            let wantedGain = tracker.map { (replicaTarget - $0.share) / Double(count - step) } ?? 0
            for range in ranges[owner] {
                if widest < 0 || widths[range] > widths[widest] { widest = range }
                guard widths[range] * 0.9 >= slice0 else { continue }
                if let tracker {
                    let distance = abs(tracker.gain(of: starts[range] &+ UInt64(slice0)) - wantedGain)
                    if distance < nearest { (nearest, end) = (distance, range) }
                } else {
                    seen += 1
                    if random.next() % seen == 0 { end = range }
                }
            }
            if end < 0 { end = widest }
            let slice = max(min(slice0, widths[end] * 0.9), 1)
            let token = starts[end] &+ UInt64(slice)
            tracker?.add(token)
            chosen.append(token)
            taken += slice
            load[owner] -= slice
            // The range now starts at the new token.
            starts[end] = token
            widths[end] -= slice
        }
        return chosen.sorted()
    }
}
