import AeroCacheCore
import AeroCacheProto

/// The cluster as the client last learned it (a node's `Admin/Ring` answer): the ring the
/// nodes read from, computed with the nodes' own ``Ring`` code, and which members take calls.
///
/// Pure: where a call on a key goes is decided here, without I/O.
struct Topology: Sendable {
    let ring: Ring
    let replicationFactor: Int
    let epoch: Int64
    /// Members that coordinate calls now (`up` or `leaving`), by index in `ring.members`.
    let serving: [Bool]
    /// Every member's address, for a call whose key has no serving replica.
    let addresses: [String]

    init(ring: Ring, replicationFactor: Int, epoch: Int64, serving: Set<String>) {
        self.ring = ring
        self.replicationFactor = max(1, replicationFactor)
        self.epoch = epoch
        self.serving = ring.members.map { serving.contains($0.id) }
        self.addresses = ring.members.map(\.address)
    }

    init(_ answer: Aerocache_V1_RingResponse) {
        let serving = answer.members.filter { $0.state == "up" || $0.state == "leaving" }.map(\.id)
        self.init(ring: answer.ring, replicationFactor: Int(answer.replicationFactor), epoch: answer.epoch, serving: Set(serving))
    }

    var isEmpty: Bool { ring.isEmpty }

    /// Where a call on `key` goes, in order: the key's replicas that take calls (the first
    /// coordinates: a node holding a replica runs the call itself), then its
    /// other replicas (joining, suspect or down: they forward or fail fast), then, when none
    /// of its replicas takes calls, the other members (they forward to the key's replicas).
    func targets(forKey key: String) -> [String] {
        let replicas = ring.preferenceIndices(for: XXHash64.hash(key), count: replicationFactor)
        var order: [String] = []
        order.reserveCapacity(replicas.count)
        for index in replicas where serving[index] { order.append(addresses[index]) }
        let servingReplicas = order.count
        for index in replicas where !serving[index] { order.append(addresses[index]) }
        if servingReplicas == 0 {
            for index in addresses.indices where serving[index] && !replicas.contains(index) { order.append(addresses[index]) }
        }
        return order
    }
}
