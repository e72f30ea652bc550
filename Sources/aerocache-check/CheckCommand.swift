import AeroCacheChecking
import AeroCacheClient
import AeroCacheCommandLine
import AeroCacheCore
import ArgumentParser
import Foundation
import Logging

@main
enum CheckMain {
    static func main() async { await CommandRunner.run(CheckCommand.self) }
}

/// `aerocache-check`: records a workload's every outcome, then reads the cluster back and
/// says whether anything acknowledged was lost (the fault tests' judge).
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerocache-check",
        abstract: "Record a workload's outcomes against a cluster, then verify nothing acknowledged was lost.",
        discussion: """
            `run` writes write-once keys, single-writer registers and counters for a while and saves
            every call's outcome (acknowledged, failed, or unknown: a timeout may have been applied)
            to a history file; faults can be injected meanwhile. `verify` reads every key back and
            exits 1 when an acknowledged write is missing or changed, a register went back, or a
            counter lies outside its acknowledged and attempted increments.
            """,
        subcommands: [Run.self, Verify.self])

    struct Connection: ParsableArguments {
        @Option(help: "Nodes to learn the cluster from, HOST:PORT[,HOST:PORT...] (env AEROCACHE_ENDPOINTS).")
        var endpoints: String = ProcessInfo.processInfo.environment["AEROCACHE_ENDPOINTS"] ?? "127.0.0.1:7400"
        @Option(help: "Deadline per call.") var timeout: String = "2s"

        func client() throws -> AeroCache {
            var seeds: [HostPort] = []
            for endpoint in endpoints.split(separator: ",") {
                do { seeds.append(try HostPort(parsing: String(endpoint))) } catch {
                    throw ValidationError("--endpoints: \(error.message)")
                }
            }
            guard !seeds.isEmpty else { throw ValidationError("--endpoints names no node") }
            var configuration = AeroCache.Configuration(seeds: seeds)
            do { configuration.timeout = .milliseconds(try DurationText.milliseconds(timeout)) } catch {
                throw ValidationError("--timeout: \(error.message)")
            }
            return AeroCache(configuration: configuration, logger: Logger(label: "aerocache-check") { _ in SwiftLogNoOpLogHandler() })
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the workload and save its history.")

        @OptionGroup var connection: Connection
        @Option(help: "Where to save the history (JSON).") var history: String
        @Option(help: "How long to run (seconds, or 500ms, 1m...).") var duration: String = "10s"
        @Option(help: "Workers, each calling in turn.") var concurrency: Int = 8
        @Option(help: "one, quorum or all, for sets (increments always answer after a quorum).") var consistency: Consistency = .quorum
        @Option(help: "Prefix of every key (default: check:<pid>).") var prefix: String?
        @Option(help: "Stop after this many calls in all, or when --duration ends if that comes first.") var operations: Int?
        @Option(help: "Pad write-once values to this many bytes (up to the node's --max-value-size).") var valueBytes: Int = 0

        func run() async throws {
            let cache = try connection.client()
            let seconds: Double
            do { seconds = Double(try DurationText.milliseconds(duration)) / 1000 } catch {
                throw ValidationError("--duration: \(error.message)")
            }
            guard concurrency > 0 else { throw ValidationError("--concurrency must be at least 1") }
            if let operations, operations < 1 { throw ValidationError("--operations must be at least 1") }
            guard valueBytes >= 0 else { throw ValidationError("--value-bytes must be 0 or more") }
            let recorder = Recorder(cache: cache, prefix: prefix ?? "check:\(getpid())", consistency: consistency,
                                    budget: operations.map(CallBudget.init), valueBytes: valueBytes)
            let started = Date()
            let result = await recorder.run(workers: concurrency, until: started.addingTimeInterval(seconds))
            await cache.close()
            do {
                try JSONEncoder().encode(result).write(to: URL(fileURLWithPath: history))
            } catch {
                throw CommandFailure("cannot write \(history): \(error.localizedDescription)")
            }
            print("run: \(result.operations) operations in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: "
                  + "\(result.acknowledged) acknowledged, \(result.failed) failed, \(result.unknown) unknown")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read the history's keys back and judge them.")

        @OptionGroup var connection: Connection
        @Option(help: "The history `run` saved.") var history: String
        @Option(help: "one, quorum or all, for the reads.") var consistency: Consistency = .quorum
        @Option(help: "How long to keep retrying reads that fail.") var wait: String = "30s"
        @Option(help: "Also write the verdict as JSON to this file.") var json: String?

        func run() async throws {
            let recorded: History
            do {
                recorded = try JSONDecoder().decode(History.self, from: Data(contentsOf: URL(fileURLWithPath: history)))
            } catch {
                throw CommandFailure("cannot read the history \(history): \(error.localizedDescription)")
            }
            let patience: Double
            do { patience = Double(try DurationText.milliseconds(wait)) / 1000 } catch {
                throw ValidationError("--wait: \(error.message)")
            }
            let cache = try connection.client()
            // Batches of at most 200 keys and about 4 MiB of values (a node answers at most 16 MiB).
            let batch = max(1, min(200, (4 << 20) / max(1, recorded.valueBytes)))
            let values = await ReadBack(cache: cache, consistency: consistency, batch: batch)
                .values(of: recorded.keys, within: patience)
            await cache.close()
            let verdict = Verdict(recorded, read: values)
            print("verify: \(recorded.written.count) acknowledged keys: lost \(verdict.lost), wrong \(verdict.wrong); "
                  + "\(recorded.registers.count) registers: stale \(verdict.staleRegisters); "
                  + "\(recorded.counters.count) counters: out of bounds \(verdict.countersOutOfBounds); "
                  + "unknown writes present \(verdict.unknownPresent) of \(recorded.writtenMaybe.count); "
                  + "failed writes present \(verdict.failedPresent) of \(recorded.writtenFailed.count); unread \(verdict.unread)")
            for problem in verdict.problems { print("  \(problem)") }
            if let json {
                do { try JSONEncoder().encode(verdict).write(to: URL(fileURLWithPath: json)) } catch {
                    throw CommandFailure("cannot write \(json): \(error.localizedDescription)")
                }
            }
            if !verdict.passed { throw ExitCode(1) }
        }
    }
}
