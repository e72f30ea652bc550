/// Answers that carry the ring epoch of the node that forwarded the call (`ring_epoch`, 0
/// when the node called coordinated it): a ring-aware client learns from it that its ring is stale.
public protocol EpochStamped: Sendable {
    var ringEpoch: Int64 { get set }
}

extension Aerocache_V1_GetResponse: EpochStamped {}
extension Aerocache_V1_HasResponse: EpochStamped {}
extension Aerocache_V1_SetResponse: EpochStamped {}
extension Aerocache_V1_DeleteResponse: EpochStamped {}
extension Aerocache_V1_IncrementResponse: EpochStamped {}
extension Aerocache_V1_TouchResponse: EpochStamped {}
