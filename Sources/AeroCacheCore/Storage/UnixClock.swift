#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in Unix milliseconds, the unit of every absolute expiry.
public enum UnixClock {
    /// Milliseconds since 1970-01-01 UTC, read from `CLOCK_REALTIME`.
    @Sendable
    public static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
