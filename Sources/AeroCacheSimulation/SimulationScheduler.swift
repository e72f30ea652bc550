import AeroCacheCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One executor and one virtual clock for a whole simulated cluster.
///
/// Every task of every simulated node runs here, one job at a time, on the thread that calls
/// ``run(until:)``. The next job is picked from the ready ones by the seeded generator, so a
/// seed fixes the interleaving; when none is ready, virtual time jumps to the next timer. The
/// same seed thus replays the same run, and a minute of cluster time passes in well under a second.
final class SimulationScheduler: TaskExecutor, @unchecked Sendable {
    private struct Timer {
        let deadline: UInt64
        let sequence: UInt64
        let fire: @Sendable () -> Void
    }

    private struct State {
        var ready: [UnownedJob] = []
        /// Sorted by (deadline, sequence), soonest last.
        var timers: [Timer] = []
        var sequence: UInt64 = 0
        var now: UInt64 = 0
        /// Picks the next job among the ready ones.
        var random: SplitMix64
    }

    private let state: Mutex<State>
    /// The thread running the simulation; a job enqueued from any other one escaped it.
    private let owner = Mutex<pthread_t?>(nil)
    /// Jobs that reached this executor from another thread (work that left the simulation:
    /// a real sleep, a real thread): the run is no longer deterministic.
    let escapes = Atomic<Int>(0)

    init(seed: UInt64) {
        state = Mutex(State(random: SplitMix64(seed: XXHash64.hash("\(seed)/jobs"))))
    }

    /// Virtual nanoseconds since the simulation began.
    var now: UInt64 { state.withLock { $0.now } }

    func enqueue(_ job: UnownedJob) {
        if let owner = owner.withLock({ $0 }), pthread_equal(owner, pthread_self()) == 0 {
            escapes.add(1, ordering: .relaxed)
        }
        state.withLock { $0.ready.append(job) }
    }

    /// Calls `fire` once `delay` of virtual time has passed (from the run loop, not a task).
    func after(_ delay: Duration, _ fire: @escaping @Sendable () -> Void) {
        let nanoseconds = UInt64(max(0, delay.wholeNanoseconds))
        state.withLock { state in
            state.sequence += 1
            let timer = Timer(deadline: state.now &+ nanoseconds, sequence: state.sequence, fire: fire)
            // Binary search for the place that keeps the soonest timer last.
            var low = 0, high = state.timers.count
            while low < high {
                let middle = (low + high) / 2
                let other = state.timers[middle]
                if (other.deadline, other.sequence) > (timer.deadline, timer.sequence) { low = middle + 1 } else { high = middle }
            }
            state.timers.insert(timer, at: low)
        }
    }

    /// Whether any timer is still set.
    var hasTimers: Bool { state.withLock { !$0.timers.isEmpty } }

    /// Drops the timers left (sleeps of tasks that ended, timeouts of calls answered).
    func discardTimers() {
        state.withLock { $0.timers.removeAll() }
    }

    /// Runs ready jobs, advancing virtual time to each next timer, until `done()` says so or
    /// virtual time passes `limit` nanoseconds; returns whether `done()` said so.
    func run(until limit: UInt64, done: () -> Bool) -> Bool {
        owner.withLock { $0 = pthread_self() }
        defer { owner.withLock { $0 = nil } }
        let executor = asUnownedTaskExecutor()
        while !done() {
            enum Step { case job(UnownedJob), timer(@Sendable () -> Void), idle }
            let step = state.withLock { state -> Step in
                if !state.ready.isEmpty {
                    let index = Int(state.random.next() % UInt64(state.ready.count))
                    state.ready.swapAt(index, state.ready.count - 1)
                    return .job(state.ready.removeLast())
                }
                guard let timer = state.timers.last, timer.deadline <= limit else { return .idle }
                state.timers.removeLast()
                state.now = max(state.now, timer.deadline)
                return .timer(timer.fire)
            }
            switch step {
            case .job(let job): job.runSynchronously(on: executor)
            case .timer(let fire): fire()
            case .idle: return done()
            }
        }
        return true
    }
}
