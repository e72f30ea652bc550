import AeroCacheCore
import AeroCacheProto
import Foundation

extension AeroCache {
    /// Stores `value` under `key`. `ttl` nil: no expiry. Returns when `consistency` replicas
    /// (the server's default, `quorum`, when nil) hold it; the absolute expiry, if any.
    ///
    /// ```swift
    /// try await cache.set("user:profile:123", profileBytes, ttl: .seconds(3600), metadata: ["content-type": "application/json"])
    /// ```
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], ttl: Duration? = nil, metadata: [String: String] = [:],
                    consistency: Consistency? = nil) async throws(AeroCacheError) -> Date? {
        var request = Aerocache_V1_SetRequest()
        request.key = key
        request.value = Data(value)
        request.ttlMs = try Self.milliseconds(ttl, key: key)
        request.metadata = metadata
        request.consistency = Aerocache_V1_Consistency(consistency)
        let answer = try await call(CacheMethods.set, request, to: await targets(forKey: key), retry: .idempotent)
        return answer.expiresAtUnixMs == 0 ? nil : Date(timeIntervalSince1970: Double(answer.expiresAtUnixMs) / 1000)
    }

    /// Stores a typed value: text as UTF-8, bytes as they are, anything else through the
    /// configured ``CacheValueCoder`` (JSON by default).
    ///
    /// ```swift
    /// try await cache.set("flags:checkout", Flags(newFlow: true), metadata: ["owner": "payments"])
    /// ```
    @discardableResult
    public func set<Value: Encodable>(_ key: String, _ value: Value, ttl: Duration? = nil, metadata: [String: String] = [:],
                                      consistency: Consistency? = nil) async throws(AeroCacheError) -> Date? {
        try await set(key, try configuration.valueCoder.bytes(of: value, key: key), ttl: ttl, metadata: metadata,
                      consistency: consistency)
    }

    /// The bytes under `key`, or nil when it is missing or expired.
    public func get(_ key: String, consistency: Consistency? = nil) async throws(AeroCacheError) -> [UInt8]? {
        try await getWithMetadata(key, consistency: consistency)?.value
    }

    /// The value under `key` as a `Value`, or nil when it is missing or expired.
    ///
    /// ```swift
    /// if let flags = try await cache.get("flags:checkout", as: Flags.self) { ... }
    /// ```
    public func get<Value: Decodable>(_ key: String, as type: Value.Type, consistency: Consistency? = nil)
        async throws(AeroCacheError) -> Value? {
        guard let bytes = try await get(key, consistency: consistency) else { return nil }
        return try configuration.valueCoder.value(type, from: bytes, key: key)
    }

    /// The entry under `key` with its metadata and expiry, or nil when it is missing or expired.
    public func getWithMetadata(_ key: String, consistency: Consistency? = nil) async throws(AeroCacheError) -> CacheEntry? {
        var request = Aerocache_V1_GetRequest()
        request.key = key
        request.consistency = Aerocache_V1_Consistency(consistency)
        return CacheEntry(try await call(CacheMethods.get, request, to: await targets(forKey: key), retry: .idempotent))
    }

    /// Removes `key`; true when a live entry was removed.
    @discardableResult
    public func delete(_ key: String, consistency: Consistency? = nil) async throws(AeroCacheError) -> Bool {
        var request = Aerocache_V1_DeleteRequest()
        request.key = key
        request.consistency = Aerocache_V1_Consistency(consistency)
        return try await call(CacheMethods.delete, request, to: await targets(forKey: key), retry: .idempotent).deleted
    }

    /// Whether a live (not expired) entry exists under `key`.
    public func has(_ key: String) async throws(AeroCacheError) -> Bool {
        var request = Aerocache_V1_HasRequest()
        request.key = key
        return try await call(CacheMethods.has, request, to: await targets(forKey: key), retry: .idempotent).exists
    }

    /// Adds `delta` to the counter under `key` and returns its new value. A missing counter
    /// starts at 0 with `ttl` (a rate-limit window); an existing one keeps its expiry.
    ///
    /// Not sent twice: a call that may have reached a node is not retried elsewhere, so an
    /// `UNAVAILABLE` or `DEADLINE_EXCEEDED` here may or may not have counted.
    ///
    /// ```swift
    /// let requests = try await cache.increment("rate:\(ip):\(minute)", ttl: .seconds(60))
    /// if requests > 100 { throw TooManyRequests() }
    /// ```
    @discardableResult
    public func increment(_ key: String, by delta: Int64 = 1, ttl: Duration? = nil) async throws(AeroCacheError) -> Int64 {
        var request = Aerocache_V1_IncrementRequest()
        request.key = key
        request.delta = delta
        request.ttlMs = try Self.milliseconds(ttl, key: key)
        return try await call(CacheMethods.increment, request, to: await targets(forKey: key), retry: .ifNeverSent).value
    }

    /// Gives an existing key a new TTL (nil: no expiry), leaving its value alone; false when
    /// the key is missing.
    @discardableResult
    public func touch(_ key: String, ttl: Duration?) async throws(AeroCacheError) -> Bool {
        var request = Aerocache_V1_TouchRequest()
        request.key = key
        request.ttlMs = try Self.milliseconds(ttl, key: key)
        return try await call(CacheMethods.touch, request, to: await targets(forKey: key), retry: .idempotent).found
    }

    /// A TTL in whole milliseconds for the wire (0: none); refused when negative.
    static func milliseconds(_ ttl: Duration?, key: String) throws(AeroCacheError) -> Int64 {
        guard let ttl else { return 0 }
        guard ttl > .zero else {
            throw AeroCacheError(.invalidArgument, "the TTL for \(key) must be positive (nil means no expiry), not \(ttl)")
        }
        return max(1, ttl.wholeMilliseconds)
    }
}
