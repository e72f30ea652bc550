/// What the store does when a write would take it over its memory bound.
public enum EvictionPolicy: String, Sendable, CaseIterable {
    /// Evict the least recently used of a few randomly sampled entries (as Redis `allkeys-lru`).
    case sampledLRU = "sampled-lru"
    /// Refuse the write (`RESOURCE_EXHAUSTED`); nothing is evicted.
    case noEviction = "noeviction"
}
