import AeroCacheCore
import Foundation

/// `aerocache-engine-bench`: nanoseconds per get and per set on the storage engine alone
/// (no sockets), with a million 16-byte keys and 100-byte values, on N threads.
///
///     aerocache-engine-bench [KEYS] [THREADS] [OPS_PER_THREAD]
@main
enum EngineBench {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
        let keyCount = arguments.count > 0 ? arguments[0] : 1_000_000
        let threads = arguments.count > 1 ? arguments[1] : 2
        let operations = arguments.count > 2 ? arguments[2] : 2_000_000

        var configuration = StorageEngine.Configuration()
        configuration.maxMemoryBytes = 8 << 30
        let engine = StorageEngine(configuration: configuration)
        let keys = (0..<keyCount).map(BenchKey.name)
        let value = [UInt8](repeating: 0x61, count: 100)
        let loadStart = MonotonicClock.nanoseconds()
        for key in keys { _ = try? engine.set(key, value: value) }
        let loadSeconds = Double(MonotonicClock.nanoseconds() - loadStart) / 1e9
        print("loaded \(keyCount) keys in \(String(format: "%.2f", loadSeconds)) s; accounted \(engine.memoryBytes / keyCount) bytes per entry")

        let get = await measure(threads: threads, operations: operations, keyCount: keyCount) { index in
            _ = engine.read(keys[index]) { $0.value.count }
        }
        let set = await measure(threads: threads, operations: operations, keyCount: keyCount) { index in
            _ = try? engine.set(keys[index], value: value)
        }
        print(String(format: "get: %.0f ns per operation per thread, %.2f M ops/s on %d threads", get.nanosPerOp, get.opsPerSecond / 1e6, threads))
        print(String(format: "set: %.0f ns per operation per thread, %.2f M ops/s on %d threads", set.nanosPerOp, set.opsPerSecond / 1e6, threads))
    }

    /// Runs `operation` on random keys from `threads` tasks at once.
    static func measure(threads: Int, operations: Int, keyCount: Int,
                        _ operation: @escaping @Sendable (Int) -> Void) async -> (nanosPerOp: Double, opsPerSecond: Double) {
        let start = MonotonicClock.nanoseconds()
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(thread + 1))
                    for _ in 0..<operations {
                        operation(Int(random.next() % UInt64(keyCount)))
                    }
                }
            }
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - start)
        return (elapsed / Double(operations), Double(operations * threads) / elapsed * 1e9)
    }
}
