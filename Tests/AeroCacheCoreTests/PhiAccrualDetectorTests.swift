@testable import AeroCacheCore
import Testing

@Suite struct PhiAccrualDetectorTests {
    /// A detector fed `intervals` in turn, starting at t = 0.
    func detector(after intervals: [Int64], settings: PhiAccrualDetector.Settings = .init()) -> PhiAccrualDetector {
        var detector = PhiAccrualDetector(settings: settings, nowMillis: 0)
        var now: Int64 = 0
        for interval in intervals {
            now += interval
            detector.heartbeat(nowMillis: now)
        }
        return detector
    }

    /// How long after its last heartbeat the detector convicts (to the millisecond).
    func silenceUntilConviction(_ detector: PhiAccrualDetector) -> Int64 {
        var silence: Int64 = 0
        while !detector.convicts(nowMillis: detector.lastArrivalMillis + silence) { silence += 1 }
        return silence
    }

    @Test func phiGrowsWithSilenceAndStaysLowWithinTheUsualInterval() {
        let regular = detector(after: Array(repeating: 200, count: 50))
        let start = regular.lastArrivalMillis
        var previous = -1.0
        for silence in stride(from: Int64(0), through: 5_000, by: 100) {
            let phi = regular.phi(nowMillis: start + silence)
            #expect(phi >= previous, "φ never falls while nothing arrives (at \(silence) ms)")
            previous = phi
        }
        #expect(regular.phi(nowMillis: start + 200) < 0.1)
        #expect(regular.phi(nowMillis: start + 800) < 1, "the acceptable pause is forgiven")
        #expect(regular.phi(nowMillis: start + 5_000) > 8)
    }

    @Test func irregularHeartbeatsAreConvictedLaterThanRegularOnes() {
        let regular = detector(after: Array(repeating: 200, count: 100))
        let irregular = detector(after: (0..<100).map { $0 % 2 == 0 ? 50 : 550 })  // same mean, wide spread
        let quick = silenceUntilConviction(regular), patient = silenceUntilConviction(irregular)
        #expect(quick > 800 && quick < 2_000, "regular: convicted after \(quick) ms")
        #expect(patient > quick + 500, "irregular: \(patient) ms against \(quick) ms")
    }

    @Test func anOutageDoesNotTeachTheDetectorToWaitLonger() {
        var detector = detector(after: Array(repeating: 200, count: 50))
        let before = silenceUntilConviction(detector)
        detector.heartbeat(nowMillis: detector.lastArrivalMillis + 30_000)  // back after a partition
        #expect(silenceUntilConviction(detector) == before)
    }

    @Test func onlyTheRecentWindowCounts() {
        var settings = PhiAccrualDetector.Settings()
        settings.windowSize = 20
        let slowThenFast = detector(after: Array(repeating: 1_000, count: 50) + Array(repeating: 200, count: 20), settings: settings)
        let fast = detector(after: Array(repeating: 200, count: 70), settings: settings)
        #expect(silenceUntilConviction(slowThenFast) == silenceUntilConviction(fast))
    }

    @Test func aFreshDetectorAssumesTheFirstInterval() {
        let fresh = PhiAccrualDetector(nowMillis: 1_000)
        #expect(!fresh.convicts(nowMillis: 2_000))
        #expect(fresh.convicts(nowMillis: 4_000))
    }
}
