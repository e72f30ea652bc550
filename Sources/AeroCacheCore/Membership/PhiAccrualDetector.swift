#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The φ accrual failure detector (Hayashibara et al. 2004, as Akka and Cassandra use it),
/// fed with the moments a member's gossiped heartbeat is seen to advance.
///
/// Instead of a fixed timeout it learns how heartbeats arrive — the mean and spread of the
/// last ``Settings/windowSize`` intervals — and turns the current silence into
/// φ = −log₁₀ P(a heartbeat comes later than this). φ = 8 means one chance in 10⁸ that a live
/// member would be this late, so a detector on a busy or slow network waits longer before
/// convicting than one on a quiet network. A pure value: the caller passes the time.
public struct PhiAccrualDetector: Sendable {
    public struct Settings: Sendable {
        /// φ at and above which the member is convicted (suspected).
        public var threshold = 8.0
        /// The spread never counts as smaller than this, so a very regular history does not make φ jumpy.
        public var minStdDeviationMillis = 100.0
        /// A pause this long on top of the usual interval is forgiven (a busy scheduler, a GC-like stall).
        public var acceptablePauseMillis = 600.0
        /// What the first intervals are assumed to be, before any were seen.
        public var firstIntervalMillis = 200.0
        public var windowSize = 100
        public init() {}
    }

    private let settings: Settings
    private var intervals: [Double] = []
    private var oldest = 0
    private var sum = 0.0
    private var sumOfSquares = 0.0
    /// When the last heartbeat arrived.
    public private(set) var lastArrivalMillis: Int64

    /// Starts with one arrival at `nowMillis` and a bootstrap history around ``Settings/firstIntervalMillis``.
    public init(settings: Settings = .init(), nowMillis: Int64) {
        self.settings = settings
        lastArrivalMillis = nowMillis
        let spread = settings.firstIntervalMillis / 4
        record(settings.firstIntervalMillis - spread)
        record(settings.firstIntervalMillis + spread)
    }

    /// A heartbeat arrived. Its interval joins the history unless the member was already
    /// convicted by then: a long outage says nothing about how heartbeats normally arrive.
    public mutating func heartbeat(nowMillis: Int64) {
        guard nowMillis > lastArrivalMillis else { return }
        if phi(nowMillis: nowMillis) < settings.threshold { record(Double(nowMillis - lastArrivalMillis)) }
        lastArrivalMillis = nowMillis
    }

    /// Suspicion that the member is gone, given that no heartbeat arrived up to `nowMillis`.
    public func phi(nowMillis: Int64) -> Double {
        let count = Double(intervals.count)
        let mean = sum / count
        let variance = max(0, sumOfSquares / count - mean * mean)
        let deviation = max(variance.squareRoot(), settings.minStdDeviationMillis)
        return Self.phi(elapsed: Double(nowMillis - lastArrivalMillis), mean: mean + settings.acceptablePauseMillis,
                        deviation: deviation)
    }

    /// Whether φ at `nowMillis` reached the threshold.
    public func convicts(nowMillis: Int64) -> Bool { phi(nowMillis: nowMillis) >= settings.threshold }

    /// −log₁₀ of the normal tail beyond `elapsed`, through the logistic approximation of the
    /// normal CDF Akka uses (error under 10⁻⁴, and no `erfc` underflow far in the tail).
    static func phi(elapsed: Double, mean: Double, deviation: Double) -> Double {
        let y = (elapsed - mean) / deviation
        let e = exp(-y * (1.5976 + 0.070566 * y * y))
        return elapsed > mean ? -log10(e / (1 + e)) : -log10(1 - 1 / (1 + e))
    }

    private mutating func record(_ interval: Double) {
        if intervals.count < settings.windowSize {
            intervals.append(interval)
        } else {
            let dropped = intervals[oldest]
            sum -= dropped
            sumOfSquares -= dropped * dropped
            intervals[oldest] = interval
            oldest = (oldest + 1) % intervals.count
        }
        sum += interval
        sumOfSquares += interval * interval
    }
}
