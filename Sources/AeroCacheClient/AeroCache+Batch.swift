import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import Foundation

extension AeroCache {
    /// Keys per batch call (the nodes take at most 1,000).
    static let batchLimit = 500

    /// Reads many keys at once: one call per node holding some of them, all in parallel.
    /// The result has one entry per key, in order (nil: missing or expired).
    ///
    /// ```swift
    /// let products = try await cache.getMany(ids.map { "product:\($0)" })
    /// ```
    public func getMany(_ keys: [String], consistency: Consistency? = nil) async throws(AeroCacheError) -> [CacheEntry?] {
        var results = [CacheEntry?](repeating: nil, count: keys.count)
        let answers = try await perNode(keys) { (keys: [String], targets: [String]) async throws(AeroCacheError) -> [CacheEntry?] in
            var request = Aerocache_V1_BatchGetRequest()
            request.keys = keys
            request.consistency = Aerocache_V1_Consistency(consistency)
            let (answer, _) = try await self.send(CacheMethods.batchGet, request, to: targets, retry: .idempotent)
            return answer.results.map { CacheEntry($0) }
        }
        for (indices, entries) in answers {
            for (index, entry) in zip(indices, entries) { results[index] = entry }
        }
        return results
    }

    /// Stores many entries at once (one TTL and metadata for all): one call per node holding
    /// some of the keys, all in parallel. Throws if any part failed; the others may be stored.
    public func setMany(_ entries: [(key: String, value: [UInt8])], ttl: Duration? = nil, metadata: [String: String] = [:],
                        consistency: Consistency? = nil) async throws(AeroCacheError) {
        guard let first = entries.first else { return }
        let ttlMs = try Self.milliseconds(ttl, key: first.key)
        let values = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        _ = try await perNode(entries.map(\.key)) { (keys: [String], targets: [String]) async throws(AeroCacheError) -> [Bool] in
            var request = Aerocache_V1_BatchSetRequest()
            request.consistency = Aerocache_V1_Consistency(consistency)
            request.entries = keys.map { key in
                var entry = Aerocache_V1_SetRequest()
                entry.key = key
                entry.value = Data(values[key]!)
                entry.ttlMs = ttlMs
                entry.metadata = metadata
                return entry
            }
            _ = try await self.send(CacheMethods.batchSet, request, to: targets, retry: .idempotent)
            return []
        }
    }

    /// Splits `keys` by the node that coordinates them, in parts of at most ``batchLimit``,
    /// runs `send` on every part in parallel, and returns each part's key indices with its result.
    /// A part fails over along its first key's preference list (the node reached forwards the
    /// keys it does not hold).
    private func perNode<Part: Sendable>(
        _ keys: [String], send: @escaping @Sendable ([String], [String]) async throws(AeroCacheError) -> Part
    ) async throws(AeroCacheError) -> [([Int], Part)] {
        var groups: [String: (indices: [Int], targets: [String])] = [:]
        var order: [String] = []
        for (index, key) in keys.enumerated() {
            let targets = await self.targets(forKey: key)
            let node = targets.first ?? ""
            if groups[node] == nil { order.append(node); groups[node] = ([], targets) }
            groups[node]!.indices.append(index)
        }
        var parts: [(indices: [Int], targets: [String])] = []
        for node in order {
            let group = groups[node]!
            for start in stride(from: 0, to: group.indices.count, by: Self.batchLimit) {
                parts.append((Array(group.indices[start..<min(start + Self.batchLimit, group.indices.count)]), group.targets))
            }
        }
        do {
            return try await withThrowingTaskGroup(of: ([Int], Part).self) { tasks in
                for part in parts {
                    let partKeys = part.indices.map { keys[$0] }
                    tasks.addTask { (part.indices, try await send(partKeys, part.targets)) }
                }
                var results: [([Int], Part)] = []
                for try await result in tasks { results.append(result) }
                return results
            }
        } catch var error as AeroCacheError {
            // Other parts may have run: only a call in one part can say it was never sent.
            if parts.count > 1, var cause = error.cause as? RPCError, cause.neverSent {
                cause.neverSent = false
                error.cause = cause
            }
            throw error
        } catch {
            throw AeroCacheError(.internalError, "\(error)")
        }
    }
}
