#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in Unix milliseconds, the unit of every absolute expiry.
public enum UnixClock {
    /// Milliseconds since 1970-01-01 UTC, read from `CLOCK_REALTIME_COARSE` on Linux.
    ///
    /// The coarse clock (a few ms resolution, as Redis's cached loop time) costs a fraction
    /// of the precise one, and every cache call reads it.
    @Sendable
    public static func nowMillis() -> Int64 {
        var spec = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_REALTIME_COARSE, &spec)
        #else
        clock_gettime(CLOCK_REALTIME, &spec)
        #endif
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
