import AeroCacheCore
import Foundation
import Logging

extension AeroCache {
    /// Cache-aside: the value under `key`, or, when it is missing, what `loader` produces,
    /// stored with `ttl` and returned.
    ///
    /// Concurrent calls for one key in this process share one read and, on a miss, one run
    /// of `loader` (no stampede on the source when a hot key expires). A caller that is
    /// cancelled stops waiting at once; the others still get the value. A loader's error
    /// reaches every caller waiting for it, and nothing is stored; a loaded value that cannot
    /// be stored is still returned (and logged).
    ///
    /// ```swift
    /// let board = try await cache.getOrSet("leaderboard:global", ttl: .seconds(30)) {
    ///     try await database.topPlayers(limit: 100)
    /// }
    /// ```
    public func getOrSet<Value: Codable & Sendable>(
        _ key: String, ttl: Duration?, metadata: [String: String] = [:],
        loader: @escaping @Sendable () async throws -> Value
    ) async throws(AeroCacheError) -> Value {
        let coder = configuration.valueCoder
        let bytes: [UInt8]?
        do {
            bytes = try await loads.run(key) {
                if let cached = try await self.get(key) { return cached }
                let loaded: Value
                do { loaded = try await loader() } catch {
                    throw AeroCacheError(.unknown, "the loader for \(key) failed: \(error)", cause: LoaderFailure(error))
                }
                let stored = try coder.bytes(of: loaded, key: key)
                do {
                    try await self.set(key, stored, ttl: ttl, metadata: metadata)
                } catch {
                    // The value was loaded: the callers get it; the next miss loads again.
                    self.logger.warning("getOrSet could not store \(key): \(error)")
                }
                return stored
            }
        } catch let error as AeroCacheError {
            throw error
        } catch {
            throw AeroCacheError(.internalError, "\(error)")
        }
        guard let bytes else { throw AeroCacheError(.internalError, "no value for \(key)") }
        return try coder.value(Value.self, from: bytes, key: key)
    }
}

/// The error a `getOrSet` loader threw, as the ``AeroCacheError/cause`` of the call's error.
public struct LoaderFailure: Error, @unchecked Sendable, CustomStringConvertible {
    /// What the loader threw.
    public let error: any Error
    init(_ error: any Error) { self.error = error }
    public var description: String { "\(error)" }
}
