/// Where a node reads its clocks, sleeps and starts detached work.
///
/// A real node uses the machine's clocks and Swift's global executor. The seeded simulation
/// (`AeroCacheSimulation`) runs several nodes in one process on one virtual clock and one
/// executor: it binds each node's ``NodeEnvironment`` to ``NodeRuntime/environment`` for every
/// task that node runs, so the same code reads that node's (perhaps skewed) clock.
public protocol NodeEnvironment: Sendable {
    /// Milliseconds since 1970-01-01 UTC, as this node's wall clock reads them.
    func wallMillis() -> Int64
    /// Nanoseconds of this node's monotonic clock.
    func monotonicNanoseconds() -> UInt64
    /// Suspends for `duration` of this node's monotonic time; throws when the task is cancelled.
    func sleep(for duration: Duration) async throws
    /// Runs `work` as a new top-level task of this node.
    func spawn(_ work: @escaping @Sendable () async -> Void)
}

/// The clocks, sleeps and detached tasks of the node code: the machine's, unless a
/// ``NodeEnvironment`` is bound for the running task (the simulation's).
public enum NodeRuntime {
    @TaskLocal public static var environment: (any NodeEnvironment)?

    /// Unix milliseconds (``UnixClock/nowMillis()`` on a real node).
    @Sendable
    public static func wallMillis() -> Int64 {
        environment?.wallMillis() ?? UnixClock.nowMillis()
    }

    /// Monotonic nanoseconds (``MonotonicClock/nanoseconds()`` on a real node).
    public static func monotonicNanoseconds() -> UInt64 {
        environment?.monotonicNanoseconds() ?? MonotonicClock.nanoseconds()
    }

    /// Monotonic milliseconds.
    public static func monotonicMillis() -> Int64 {
        Int64(monotonicNanoseconds() / 1_000_000)
    }

    /// Monotonic time as an instant, for measuring how long something took.
    public static func now() -> Duration {
        .nanoseconds(Int64(clamping: monotonicNanoseconds()))
    }

    /// `Task.sleep(for:)` on this node's clock.
    public static func sleep(for duration: Duration) async throws {
        if let environment { try await environment.sleep(for: duration) } else { try await Task.sleep(for: duration) }
    }

    /// `Task { work() }` as this node's task.
    public static func spawn(_ work: @escaping @Sendable () async -> Void) {
        if let environment { environment.spawn(work) } else { Task { await work() } }
    }
}
