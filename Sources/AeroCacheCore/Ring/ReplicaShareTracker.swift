/// The ring as a newcomer's tokens are added to it one by one, and how much of the hash space
/// the newcomer holds as one of `replicas` replicas: what ``TokenAllocator`` steers by.
///
/// A token makes its member a replica not only of its own range but of the ranges before it,
/// back to where `replicas` other members come first. Two tokens of the newcomer within that
/// distance share those ranges, so where a token goes changes the newcomer's replica share by
/// anything from its own slice to several ranges more.
struct ReplicaShareTracker {
    /// Every token so far with its owner's index (`newcomer` for the newcomer's), sorted.
    private var ring: [(token: UInt64, owner: Int)]
    private let newcomer: Int
    private let replicas: Int
    /// The newcomer's replica share so far, in hashes.
    private(set) var share: Double = 0

    init(existing: [(token: UInt64, owner: Int)], newcomer: Int, replicas: Int) {
        ring = existing.sorted { $0.token < $1.token }
        self.newcomer = newcomer
        self.replicas = replicas
    }

    /// How much the newcomer's replica share grows with a token at `token`.
    func gain(of token: UInt64) -> Double {
        let count = ring.count
        let next = insertionIndex(of: token)
        func at(_ index: Int) -> (token: UInt64, owner: Int) { ring[((index % count) + count) % count] }
        func width(endingAt index: Int) -> Double { Double(at(index).token &- at(index - 1).token) }
        // Whether the newcomer was a replica (before the new token) of the range ending at
        // `end`: it is when it comes among the first `replicas` distinct owners from there.
        func wasReplica(ofRangeEndingAt end: Int) -> Bool {
            var seen: [Int] = []
            for step in 0..<count {
                let owner = at(end + step).owner
                if owner == newcomer { return true }
                if !seen.contains(owner) {
                    seen.append(owner)
                    if seen.count == replicas { return false }
                }
            }
            return false
        }
        // The new token's own slice was part of the range ending at `next`.
        var gain = wasReplica(ofRangeEndingAt: next) ? 0 : Double(token &- at(next - 1).token)
        // The ranges before it: the newcomer joins each one's replicas while fewer than
        // `replicas` other members come between it and the new token.
        var between: [Int] = []
        for back in 1..<count {
            let end = next - back
            let owner = at(end).owner
            if owner == newcomer { break }  // from here back, that token already counts
            if !between.contains(owner) { between.append(owner) }
            if between.count >= replicas { break }
            if !wasReplica(ofRangeEndingAt: end) { gain += width(endingAt: end) }
        }
        return gain
    }

    /// Adds a newcomer token at `token`.
    mutating func add(_ token: UInt64) {
        share += gain(of: token)
        ring.insert((token, newcomer), at: insertionIndex(of: token))
    }

    /// The index of the first token at or after `token` (`ring.count` past the last one).
    private func insertionIndex(of token: UInt64) -> Int {
        var low = 0
        var high = ring.count
        while low < high {
            let middle = (low + high) / 2
            if ring[middle].token < token { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
