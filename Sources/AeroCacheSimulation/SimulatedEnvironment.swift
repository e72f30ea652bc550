import AeroCacheCore
import Synchronization

/// One simulated node's clocks and tasks (``NodeEnvironment``): virtual time, with a wall
/// clock the scenario can skew, and every task on the simulation's scheduler.
final class SimulatedEnvironment: NodeEnvironment {
    /// Where virtual time 0 falls on the wall clock (2026-01-01 UTC).
    static let epochMillis: Int64 = 1_767_225_600_000

    let scheduler: SimulationScheduler
    let name: String
    /// Milliseconds this node's wall clock reads ahead of true time (negative: behind).
    let skewMillis = Atomic<Int64>(0)

    init(scheduler: SimulationScheduler, name: String) {
        self.scheduler = scheduler
        self.name = name
    }

    func wallMillis() -> Int64 {
        Self.epochMillis + Int64(scheduler.now / 1_000_000) + skewMillis.load(ordering: .relaxed)
    }

    func monotonicNanoseconds() -> UInt64 {
        // Every node's monotonic clock starts at a day, so no difference of them goes below zero.
        86_400_000_000_000 &+ scheduler.now
    }

    func sleep(for duration: Duration) async throws {
        let sleeper = Sleeper()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                guard sleeper.wait(continuation) else { return }
                scheduler.after(duration) { sleeper.finish(nil) }
            }
        } onCancel: {
            sleeper.finish(CancellationError())
        }
    }

    func spawn(_ work: @escaping @Sendable () async -> Void) {
        Task(executorPreference: scheduler) {
            await NodeRuntime.$environment.withValue(self) { await work() }
        }
    }

    /// Runs `work` as this node's task and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task(executorPreference: scheduler) {
            try await NodeRuntime.$environment.withValue(self) { try await work() }
        }.value
    }
}

/// One sleep: resumed once, by its timer or by cancellation, whichever comes first.
private final class Sleeper: Sendable {
    private enum State {
        case new, waiting(CheckedContinuation<Void, any Error>), finished(CancellationError?)
    }

    private let state = Mutex(State.new)

    /// Keeps `continuation`; false when the sleep already ended (cancelled first).
    func wait(_ continuation: CheckedContinuation<Void, any Error>) -> Bool {
        let ended = state.withLock { state -> CancellationError?? in
            if case .finished(let error) = state { return .some(error) }
            state = .waiting(continuation)
            return .none
        }
        guard let ended else { return true }
        if let error = ended { continuation.resume(throwing: error) } else { continuation.resume() }
        return false
    }

    func finish(_ error: CancellationError?) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            switch state {
            case .new:
                state = .finished(error)
                return nil
            case .waiting(let continuation):
                state = .finished(error)
                return continuation
            case .finished:
                return nil
            }
        }
        if let error { waiting?.resume(throwing: error) } else { waiting?.resume() }
    }
}
