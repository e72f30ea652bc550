import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import Foundation
import Histogram
import Synchronization

/// Runs the workload against the endpoints: warm-up, then the measured window.
struct Runner: Sendable {
    struct Settings: Sendable {
        var duration: Duration
        var warmup: Duration
        var concurrency: Int
        /// Operations per second in open loop; 0 means closed loop.
        var rate: Double
        var valueSize: Int
        var consistency: Aerocache_V1_Consistency
        var timeout: Duration
        var progress: Bool
    }

    let settings: Settings
    let workload: Workload
    /// Connections, each with the executor of its own event loop: a worker runs on its
    /// connection's loop, so calls and answers never change threads.
    let connections: [(connection: GRPCClientConnection, executor: EventLoopTaskExecutor)]
    private let value: Data

    init(settings: Settings, workload: Workload, connections: [(connection: GRPCClientConnection, executor: EventLoopTaskExecutor)]) {
        self.settings = settings
        self.workload = workload
        self.connections = connections
        var random = FastRandom(seed: 42)
        value = Data((0..<settings.valueSize).map { _ in UInt8(truncatingIfNeeded: random.next() % 26 + 97) })
    }

    /// Writes every key once (batches of 100), so that reads hit.
    func prefill() async throws -> (keys: Int, seconds: Double) {
        let start = MonotonicClock.nanoseconds()
        let batch = 100
        let batches = (workload.keyCount + batch - 1) / batch
        let next = SharedCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<max(1, min(settings.concurrency, 32)) {
                let (connection, executor) = connections[worker % connections.count]
                group.addTask(executorPreference: executor) { [self] in
                    while true {
                        let index = next.increment()
                        if index >= batches { return }
                        var request = Aerocache_V1_BatchSetRequest()
                        request.consistency = settings.consistency
                        for key in (index * batch)..<min((index + 1) * batch, workload.keyCount) {
                            var entry = Aerocache_V1_SetRequest()
                            entry.key = Workload.key(key)
                            entry.value = value
                            request.entries.append(entry)
                        }
                        _ = try await connection.unary(CacheMethods.batchSet, request, timeout: .seconds(30))
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
        let completed = SharedCounter()
        let nextIntended = SharedCounter()
        let interval = settings.rate > 0 ? 1e9 / settings.rate : 0

        let total = await withTaskGroup(of: Tally?.self) { group in
            for worker in 0..<settings.concurrency {
                let (connection, executor) = connections[worker % connections.count]
                group.addTask(executorPreference: executor) { [self] in
                    var tally = Tally()
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
                        let operation = workload.nextOperation(&random)
                        let key = Workload.key(workload.nextKeyIndex(&random))
                        let outcome = await perform(operation, key: key, on: connection)
                        let finished = MonotonicClock.nanoseconds()
                        completed.increment()
                        tally.all += 1
                        if started >= measureFrom && finished <= end + 1_000_000_000 {
                            tally.record(operation, outcome, nanoseconds: finished - started)
                        }
                    }
                    return tally
                }
            }
            if settings.progress {
                group.addTask {
                    var last = 0
                    while MonotonicClock.nanoseconds() < end {
                        try? await Task.sleep(for: .seconds(1))
                        let now = completed.current
                        let phase = MonotonicClock.nanoseconds() < measureFrom ? "warm-up" : "measuring"
                        FileHandle.standardError.write(Data("\r\u{1B}[K\(phase): \(now - last) ops/s, \(now) ops".utf8))
                        last = now
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

    enum Outcome { case hit, miss, done, failed(String) }

    private func perform(_ operation: Workload.Operation, key: String, on connection: GRPCClientConnection) async -> Outcome {
        do {
            switch operation {
            case .get:
                var request = Aerocache_V1_GetRequest()
                request.key = key
                request.consistency = settings.consistency
                return try await connection.unary(CacheMethods.get, request, timeout: settings.timeout).found ? .hit : .miss
            case .set:
                var request = Aerocache_V1_SetRequest()
                request.key = key
                request.value = value
                request.consistency = settings.consistency
                _ = try await connection.unary(CacheMethods.set, request, timeout: settings.timeout)
            case .has:
                var request = Aerocache_V1_HasRequest()
                request.key = key
                return try await connection.unary(CacheMethods.has, request, timeout: settings.timeout).exists ? .hit : .miss
            case .incr:
                var request = Aerocache_V1_IncrementRequest()
                request.key = "counter:" + key
                request.delta = 1
                _ = try await connection.unary(CacheMethods.increment, request, timeout: settings.timeout)
            case .del:
                var request = Aerocache_V1_DeleteRequest()
                request.key = key
                request.consistency = settings.consistency
                _ = try await connection.unary(CacheMethods.delete, request, timeout: settings.timeout)
            }
            return .done
        } catch let error as RPCError {
            return .failed("\(error.code)")
        } catch {
            return .failed("\(error)")
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
    var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    /// Operations completed, warm-up included (for CPU per operation).
    var all = 0
    var operations = 0
    var reads = 0
    var hits = 0
    var errors: [String: Int] = [:]
    var byOperation: [String: Int] = [:]

    mutating func record(_ operation: Workload.Operation, _ outcome: Runner.Outcome, nanoseconds: UInt64) {
        operations += 1
        byOperation[operation.rawValue, default: 0] += 1
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
        byOperation.merge(other.byOperation, uniquingKeysWith: +)
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
