import Histogram
import Foundation

/// The numbers a run comes to, as text and as the contract's JSON.
struct Report {
    let tally: Tally
    let seconds: Double
    let cpuMicrosPerOperation: Double

    var opsPerSecond: Double { seconds > 0 ? Double(tally.operations) / seconds : 0 }
    var errors: Int { tally.errors.values.reduce(0, +) }
    var hitRatio: Double { tally.reads > 0 ? Double(tally.hits) / Double(tally.reads) : 0 }

    var latency: [(String, UInt64)] {
        let h = tally.histogram
        return [("p50", h.valueAtPercentile(50)), ("p90", h.valueAtPercentile(90)), ("p99", h.valueAtPercentile(99)),
                ("p999", h.valueAtPercentile(99.9)), ("max", h.max)]
    }

    func text(header: String) -> String {
        var lines = [header]
        lines.append(String(format: "  ops/s %.0f   operations %d   errors %d   hit ratio %.3f", opsPerSecond, tally.operations, errors, hitRatio))
        lines.append("  latency µs  " + latency.map { "\($0.0 == "p999" ? "p99.9" : $0.0) \($0.1)" }.joined(separator: "  "))
        lines.append(String(format: "  bench CPU %.1f µs per operation", cpuMicrosPerOperation))
        if !tally.errors.isEmpty {
            lines.append("  errors: " + tally.errors.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    func writeJSON(to path: String, config: [String: Any]) throws {
        let document: [String: Any] = [
            "ops_per_sec": opsPerSecond,
            "operations": tally.operations,
            "errors": errors,
            "hit_ratio": hitRatio,
            "latency_us": Dictionary(uniqueKeysWithValues: latency.map { ($0.0, $0.1) }),
            "bench_cpu_us_per_op": cpuMicrosPerOperation,
            "operations_by_type": Dictionary(uniqueKeysWithValues: zip(Workload.Operation.allCases.map(\.rawValue), tally.byOperation)),
            "errors_by_code": tally.errors,
            "config": config,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }
}
