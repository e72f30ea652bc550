import AeroCacheChecking
import AeroCacheSimulation
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs the seeded simulation (``Simulation``) for a range of seeds, or replays one.
@main
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerocache-sim",
        abstract: "Run real AeroCache nodes in one process on a virtual clock and a faulty network, seed by seed.",
        discussion: """
            Each seed starts a cluster, runs the checker's workload while faults strike one at a time \
            (crashes and restarts, partitions, one-way cuts, packet loss, skewed clocks, joins, \
            decommissions), heals, and checks that the replicas agree within 60 s and that every \
            acknowledged write reads back. A failing seed replays exactly: aerocache-sim --seed N --verbose.
            """)

    @Option(help: "Seeds to run, FIRST-LAST (inclusive).")
    var seeds: String = "1-20"

    @Option(help: "Run this seed only.")
    var seed: UInt64?

    @Option(help: "Nodes the cluster starts with.")
    var nodes = 4

    @Option(help: "Faults injected per seed, one after another.")
    var faults = 3

    @Flag(help: "Print the faults and every node's log lines as they happen.")
    var verbose = false

    @Option(help: "Note every call on this key, and what each node holds of it at the end.")
    var traceKey: String?

    mutating func run() throws {
        Self.makeHashingDeterministic()
        let range: ClosedRange<UInt64>
        if let seed {
            range = seed...seed
        } else {
            let parts = seeds.split(separator: "-").compactMap { UInt64($0) }
            guard parts.count == 2, parts[0] <= parts[1] else { throw ValidationError("--seeds takes FIRST-LAST, as 1-200") }
            range = parts[0]...parts[1]
        }
        var settings = Simulation.Settings()
        settings.nodes = nodes
        settings.faults = faults
        settings.verbose = verbose
        settings.traceKey = traceKey
        var failing: [UInt64] = []
        var planned: [String: Int] = [:]
        var completed: [String: Int] = [:]
        for seed in range {
            let report = Simulation.run(seed: seed, settings: settings)
            print(Self.line(report))
            for kind in report.planned { planned[kind, default: 0] += 1 }
            for kind in report.completed { completed[kind, default: 0] += 1 }
            if !report.passed {
                failing.append(seed)
                for event in report.events { print("    \(event)") }
                for problem in report.problems + (report.verdict?.problems ?? []) { print("    problem: \(problem)") }
            }
        }
        print("faults injected (ran their course): "
              + planned.keys.sorted().map { "\($0) \(planned[$0]!) (\(completed[$0] ?? 0))" }.joined(separator: ", "))
        print("\(range.count - failing.count) of \(range.count) seeds passed")
        if !failing.isEmpty {
            print("failing seeds: \(failing.map(String.init).joined(separator: " ")) (replay one: aerocache-sim --seed N --verbose)")
            throw ExitCode.failure
        }
    }

    static func line(_ report: SimulationReport) -> String {
        let verdict = report.verdict.map { "lost \($0.lost), wrong \($0.wrong), stale \($0.staleRegisters), counters off \($0.countersOutOfBounds), came back \($0.resurrected)" }
            ?? "not verified"
        let converged = report.convergedAfter.map { String(format: "agreed %.1f s after the heal", $0) } ?? "never agreed"
        let faults = report.schedule
        return "seed \(report.seed): \(report.passed ? "passed" : "FAILED"); \(report.operations) calls "
            + "(\(report.acknowledged) ok, \(report.failed) failed, \(report.unknown) unknown); \(verdict); \(converged); "
            + "\(String(format: "%.0f", report.virtualSeconds)) s virtual, \(report.messages) messages (\(report.dropped) lost, \(report.duplicated) twice); "
            + "faults: \(faults.joined(separator: ", ")); trace \(String(report.trace, radix: 16))"
    }

    /// Dictionaries and sets iterate in an order fixed per process unless hashing is
    /// deterministic, which only the environment at start can ask for: re-run with it.
    static func makeHashingDeterministic() {
        guard getenv("SWIFT_DETERMINISTIC_HASHING") == nil else { return }
        setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        // execv returned: go on, but a seed may then run differently in another process.
        FileHandle.standardError.write(Data("aerocache-sim: could not re-run with SWIFT_DETERMINISTIC_HASHING=1: a replay may differ\n".utf8))
    }
}
