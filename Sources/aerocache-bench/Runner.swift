import AeroCacheClient
import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import Foundation
import Histogram
import Synchronization

/// Runs the workload through the client: warm-up, then the measured window.
struct Runner: Sendable {
    struct Settings: Sendable {
        var duration: Duration
        var warmup: Duration
        var concurrency: Int
        /// Calls each worker keeps in flight at once (sent together, awaited together).
        var depth: Int
        /// Operations per second in open loop; 0 means closed loop.
        var rate: Double
        var valueSize: Int
        var consistency: Consistency?
        var progress: Bool
    }

    let settings: Settings
    let workload: Workload
    let client: AeroCache
    /// The executors of the client's event loops: worker `i` runs on executor `i % count`, so
    /// its calls and answers stay on one thread.
    let executors: [EventLoopTaskExecutor]
    private let value: [UInt8]

    init(settings: Settings, workload: Workload, client: AeroCache, executors: [EventLoopTaskExecutor]) {
        self.settings = settings
        self.workload = workload
        self.client = client
        self.executors = executors
        var random = FastRandom(seed: 42)
        value = (0..<settings.valueSize).map { _ in UInt8(truncatingIfNeeded: random.next() % 26 + 97) }
    }

    /// Writes every key once (batches of 100, split per node by the client), so that reads hit.
    func prefill() async throws -> (keys: Int, seconds: Double) {
        let start = MonotonicClock.nanoseconds()
        let batch = 100
        let batches = (workload.keyCount + batch - 1) / batch
        let next = SharedCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(settings.concurrency, 32)) {
                group.addTask(executorPreference: executors[worker % executors.count]) { [self] in
                    while true {
                        let index = next.increment()
                        if index >= batches { return }
                        let entries = ((index * batch)..<min((index + 1) * batch, workload.keyCount)).map { (key: Workload.key($0), value: value) }
                        try await client.setMany(entries, consistency: settings.consistency)
                    }
                }
            }
            try await group.waitForAll()
        }
        return (workload.keyCount, Double(MonotonicClock.nanoseconds() - start) / 1e9)
    }

    /// Runs warm-up plus the measured window and returns the measured tally.
    func run() async -> (tally: Tally, measuredSeconds: Double, cpuMicrosPerOperation: Double) {
        let cpuBefore = ProcessCPU.seconds()
        let begin = MonotonicClock.nanoseconds()
        let measureFrom = begin + UInt64(max(0, settings.warmup.wholeNanoseconds))
        let end = measureFrom + UInt64(max(0, settings.duration.wholeNanoseconds))
        let live = LiveStats()
        let nextIntended = SharedCounter()
        let interval = settings.rate > 0 ? 1e9 / settings.rate : 0

        let total = await withTaskGroup(of: Tally?.self) { group in
            for worker in 0..<settings.concurrency {
                let executor = executors[worker % executors.count]
                group.addTask(executorPreference: executor) { [self] in
                    var tally = Tally()
                    // Since the last hand-over to `live` (each second), at a coarser precision.
                    var fresh = Tally(digits: .two)
                    var handedOver = begin
                    var random = FastRandom(seed: UInt64(worker) &* 0x9E37_79B9 &+ 1)
                    while true {
                        let started: UInt64
                        if interval > 0 {
                            // Open loop: latency counts from the intended start, so stalls are not hidden.
                            let slot = nextIntended.increment()
                            started = begin + UInt64(Double(slot) * interval)
                            if started >= end { break }
                            let now = MonotonicClock.nanoseconds()
                            if started > now + 20_000 { try? await Task.sleep(nanoseconds: started - now) }
                        } else {
                            started = MonotonicClock.nanoseconds()
                            if started >= end { break }
                        }
                        let measured = started >= measureFrom
                        if settings.depth == 1 {
                            let operation = workload.nextOperation(&random)
                            let key = Workload.key(workload.nextKeyIndex(&random))
                            let outcome = await perform(operation, key: key)
                            let finished = MonotonicClock.nanoseconds()
                            tally.all += 1
                            fresh.all += 1
                            if measured && finished <= end + 1_000_000_000 {
                                tally.record(operation, outcome, nanoseconds: finished - started)
                                if settings.progress { fresh.record(operation, outcome, nanoseconds: finished - started) }
                            }
                        } else {
                            let calls = (0..<settings.depth).map { _ in
                                (workload.nextOperation(&random), Workload.key(workload.nextKeyIndex(&random)))
                            }
                            let outcomes = await withTaskGroup(of: (Workload.Operation, Outcome, UInt64).self) { round in
                                for (operation, key) in calls {
                                    round.addTask(executorPreference: executor) {
                                        let outcome = await perform(operation, key: key)
                                        return (operation, outcome, MonotonicClock.nanoseconds())
                                    }
                                }
                                var outcomes: [(Workload.Operation, Outcome, UInt64)] = []
                                for await outcome in round { outcomes.append(outcome) }
                                return outcomes
                            }
                            tally.all += outcomes.count
                            fresh.all += outcomes.count
                            for (operation, outcome, finished) in outcomes where measured && finished <= end + 1_000_000_000 {
                                tally.record(operation, outcome, nanoseconds: finished - started)
                                if settings.progress { fresh.record(operation, outcome, nanoseconds: finished - started) }
                            }
                        }
                        if settings.progress && MonotonicClock.nanoseconds() - handedOver >= 1_000_000_000 {
                            live.add(fresh)
                            fresh = Tally(digits: .two)
                            handedOver = MonotonicClock.nanoseconds()
                        }
                    }
                    if settings.progress { live.add(fresh) }
                    return tally
                }
            }
            if settings.progress {
                group.addTask {
                    var last = 0
                    while MonotonicClock.nanoseconds() < end {
                        try? await Task.sleep(for: .seconds(1))
                        let snapshot = live.snapshot()
                        let done = snapshot.all
                        let phase = MonotonicClock.nanoseconds() < measureFrom ? "warm-up" : "measuring"
                        FileHandle.standardError.write(Data(("\r\u{1B}[K\(phase): \(done - last) ops/s, \(snapshot.errors) errors, "
                            + "p50 \(snapshot.p50) µs, p99 \(snapshot.p99) µs so far").utf8))
                        last = done
                    }
                    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                    return nil
                }
            }
            var total = Tally()
            for await tally in group { if let tally { total.merge(tally) } }
            return total
        }
        let cpu = ProcessCPU.seconds() - cpuBefore
        let measured = Double(min(MonotonicClock.nanoseconds(), end) - measureFrom) / 1e9
        return (total, measured, total.all > 0 ? cpu / Double(total.all) * 1e6 : 0)
    }

    enum Outcome: Sendable { case hit, miss, done, failed(String) }

    private func perform(_ operation: Workload.Operation, key: String) async -> Outcome {
        do {
            switch operation {
            case .get:
                return try await client.getWithMetadata(key, consistency: settings.consistency) != nil ? .hit : .miss
            case .set:
                try await client.set(key, value, consistency: settings.consistency)
            case .has:
                return try await client.has(key) ? .hit : .miss
            case .incr:
                try await client.increment("counter:" + key)
            case .del:
                try await client.delete(key, consistency: settings.consistency)
            }
            return .done
        } catch {
            return .failed("\(error.code)")
        }
    }
}

/// What the workers have measured so far, for the live line (they hand it over in parts).
final class LiveStats: Sendable {
    private let tally = Mutex(Tally(digits: .two))

    func add(_ part: Tally) { tally.withLock { $0.merge(part) } }

    /// Calls completed (warm-up included); errors and percentiles of the measured ones.
    func snapshot() -> (all: Int, errors: Int, p50: UInt64, p99: UInt64) {
        tally.withLock { tally in
            (tally.all, tally.errors.values.reduce(0, +),
             tally.operations > 0 ? tally.histogram.valueAtPercentile(50) : 0,
             tally.operations > 0 ? tally.histogram.valueAtPercentile(99) : 0)
        }
    }
}

/// A counter shared by workers.
final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    /// Adds one and returns the value before.
    @discardableResult
    func increment() -> Int { value.add(1, ordering: .relaxed).oldValue }
    var current: Int { value.load(ordering: .relaxed) }
}

/// Counts and latencies of one worker, merged at the end.
struct Tally: Sendable {
    var histogram: Histogram<UInt64>

    init(digits: SignificantDigits = .three) {
        histogram = Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: digits)
    }
    /// Operations completed, warm-up included (for CPU per operation).
    var all = 0
    var operations = 0
    var reads = 0
    var hits = 0
    var errors: [String: Int] = [:]
    /// Operations by ``Workload/Operation``, in `allCases` order.
    var byOperation = [Int](repeating: 0, count: Workload.Operation.allCases.count)

    mutating func record(_ operation: Workload.Operation, _ outcome: Runner.Outcome, nanoseconds: UInt64) {
        operations += 1
        byOperation[operation.index] += 1
        switch outcome {
        case .hit: reads += 1; hits += 1
        case .miss: reads += 1
        case .done: break
        case .failed(let code): errors[code, default: 0] += 1
        }
        _ = histogram.record(max(nanoseconds / 1000, 1))
    }

    mutating func merge(_ other: Tally) {
        histogram.add(other.histogram)
        all += other.all
        operations += other.operations
        reads += other.reads
        hits += other.hits
        errors.merge(other.errors, uniquingKeysWith: +)
        for index in byOperation.indices { byOperation[index] += other.byOperation[index] }
    }
}

/// The process's CPU time, to report the bench's own cost per call.
enum ProcessCPU {
    static func seconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
