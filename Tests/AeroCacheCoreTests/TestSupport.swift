import AeroCacheCore
import Synchronization

/// A settable Unix-millisecond clock, so expiry is tested without sleeping.
final class ManualClock: Sendable {
    private let millis: Mutex<Int64>
    init(at start: Int64 = 1_700_000_000_000) { millis = Mutex(start) }
    var now: Int64 { millis.withLock { $0 } }
    func advance(by delta: Int64) { millis.withLock { $0 += delta } }
    func set(_ value: Int64) { millis.withLock { $0 = value } }
    var reader: @Sendable () -> Int64 { { self.now } }
}

/// A deterministic generator for reproducible random tests.
typealias SeededRandom = SplitMix64
