import AeroCacheProto
import Foundation

/// A value read from the cache, with what was stored alongside it.
public struct CacheEntry: Sendable, Equatable {
    public var value: [UInt8]
    public var metadata: [String: String]
    /// Absolute expiry in Unix milliseconds; nil when the entry never expires.
    public var expiresAtUnixMilliseconds: Int64?
}

extension CacheEntry {
    /// The entry a `Get` answered, or nil when it found none.
    init?(_ answer: Aerocache_V1_GetResponse) {
        guard answer.found else { return nil }
        self.init(value: Array(answer.value), metadata: answer.metadata,
                  expiresAtUnixMilliseconds: answer.expiresAtUnixMs == 0 ? nil : answer.expiresAtUnixMs)
    }

    /// When the entry expires, if it does.
    public var expiresAt: Date? {
        expiresAtUnixMilliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
}
