/// The consistent-hash ring: who owns which keys, computed from the membership view.
///
/// Each member owns the tokens it announced when it joined (``TokenAllocator``); a token owns
/// the hashes in `(previous token, token]`. A key's preference list is the first `count`
/// distinct members clockwise from its hash — spread over distinct zones first when members
/// declare zones. Nodes and clients build the same ring from the same members and epoch.
public struct Ring: Sendable, Equatable {
    /// A member as the ring sees it.
    public struct Member: Sendable, Hashable {
        public var id: String
        public var address: String
        public var zone: String
        public var tokens: [UInt64]

        public init(id: String, address: String, zone: String = "", tokens: [UInt64]) {
            self.id = id
            self.address = address
            self.zone = zone
            self.tokens = tokens
        }
    }

    public let members: [Member]
    public let epoch: UInt64
    /// Every token, sorted (`owners` holds the index in `members` of each one's owner).
    public let tokens: [UInt64]
    let owners: [Int32]
    private let usesZones: Bool

    public init(members: [Member], epoch: UInt64 = 0) {
        self.members = members.sorted { $0.id < $1.id }
        self.epoch = epoch
        var pairs: [(UInt64, Int32)] = []
        for (index, member) in self.members.enumerated() {
            for token in member.tokens { pairs.append((token, Int32(index))) }
        }
        // Equal tokens (never produced by the allocator) are ordered by member id, so all agree.
        pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        tokens = pairs.map(\.0)
        owners = pairs.map(\.1)
        usesZones = Set(self.members.map(\.zone)).count > 1
    }

    public static func == (lhs: Ring, rhs: Ring) -> Bool {
        lhs.epoch == rhs.epoch && lhs.members == rhs.members
    }

    public var isEmpty: Bool { tokens.isEmpty }

    /// The index of the first token at or after `hash` (wrapping).
    func firstTokenIndex(atOrAfter hash: UInt64) -> Int {
        var low = 0
        var high = tokens.count
        while low < high {
            let middle = (low + high) / 2
            if tokens[middle] < hash { low = middle + 1 } else { high = middle }
        }
        return low == tokens.count ? 0 : low
    }

    /// Which token range holds `hash`: the index of the token that ends it.
    public func rangeIndex(ofHash hash: UInt64) -> Int {
        firstTokenIndex(atOrAfter: hash)
    }

    /// Indices into ``members`` of the first `count` distinct members clockwise from `hash`.
    public func preferenceIndices(for hash: UInt64, count: Int) -> [Int] {
        guard !tokens.isEmpty else { return [] }
        let wanted = min(count, members.count)
        var chosen: [Int] = []
        chosen.reserveCapacity(wanted)
        let start = firstTokenIndex(atOrAfter: hash)
        if usesZones {
            // First pass: one member per zone; second pass: fill up with the rest, in ring order.
            var zones = Set<String>()
            var index = start
            for _ in 0..<tokens.count {
                if chosen.count == wanted { break }
                let owner = Int(owners[index])
                if !chosen.contains(owner) && zones.insert(members[owner].zone).inserted { chosen.append(owner) }
                index = index + 1 == tokens.count ? 0 : index + 1
            }
        }
        // Stops as soon as enough members are chosen (a `where` clause would walk every token).
        var index = start
        for _ in 0..<tokens.count {
            if chosen.count == wanted { break }
            let owner = Int(owners[index])
            if !chosen.contains(owner) { chosen.append(owner) }
            index = index + 1 == tokens.count ? 0 : index + 1
        }
        return chosen
    }

    /// The first `count` distinct members clockwise from the key's hash.
    public func preferenceList(forKey key: String, count: Int) -> [Member] {
        preferenceIndices(for: XXHash64.hash(key), count: count).map { members[$0] }
    }

    /// Each member's share of the hash space it owns as primary (sums to 1).
    public func primaryShares() -> [String: Double] {
        var shares: [String: Double] = [:]
        guard !tokens.isEmpty else { return shares }
        for index in tokens.indices {
            let previous = index == 0 ? tokens[tokens.count - 1] : tokens[index - 1]
            let width = tokens[index] &- previous  // wraps for the first range
            shares[members[Int(owners[index])].id, default: 0] += Double(width) / 18_446_744_073_709_551_616.0
        }
        if tokens.count == 1 { shares[members[Int(owners[0])].id] = 1 }
        return shares
    }
}
