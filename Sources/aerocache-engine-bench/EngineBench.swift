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
        let keys = (0..<keyCount).map { index in
            let digits = String(index)
            return "key:" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
        }
        let value = [UInt8](repeating: 0x61, count: 100)
        let loadStart = DispatchTime.now().uptimeNanoseconds
        for key in keys { _ = try? engine.set(key, value: value) }
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
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
        let start = DispatchTime.now().uptimeNanoseconds
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    var state = UInt64(thread + 1) &* 0x9E37_79B9_7F4A_7C15
                    for _ in 0..<operations {
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        operation(Int((state >> 33) % UInt64(keyCount)))
                    }
                }
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start)
        return (elapsed / Double(operations), Double(operations * threads) / elapsed * 1e9)
    }
}
