import AeroCacheCore

extension Aerocache_V1_RingResponse {
    /// The ring the answering node computes, rebuilt from the members it sent (the same
    /// ``Ring`` code, so the CLI and the client place keys as the nodes do).
    public var ring: Ring {
        Ring(members: members.map { Ring.Member(id: $0.id, address: $0.address, zone: $0.zone, tokens: $0.tokens) },
             epoch: UInt64(max(0, epoch)))
    }
}
