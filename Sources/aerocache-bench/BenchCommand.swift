import AeroCacheClient
import AeroCacheCommandLine
import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import ArgumentParser
import Foundation
import Histogram
import Logging
import NIOCore
import NIOPosix

@main
enum BenchMain {
    static func main() async { await CommandRunner.run(BenchCommand.self) }
}

/// `aerocache-bench`: a load driver that reports throughput and HDR latency percentiles.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerocache-bench",
        abstract: "Drive load at AeroCache nodes and report ops/s, errors, hit ratio and latency percentiles.",
        discussion: """
            Calls go through the AeroCache client, which learns the ring from --endpoints and sends
            each call to a replica of its key (--no-routing: to the endpoints in turn, which
            forward it, as a client that does not route would).
            Closed loop by default (--concurrency workers, each waiting for its answer; --depth N:
            each keeps N calls in flight); --rate OPS runs an open loop where latency counts from
            each operation's intended start time, so a stalled server shows up as latency instead
            of hiding as lower throughput. On a terminal a live line shows ops/s, errors, p50 and
            p99 each second.
            """)

    @OptionGroup var security: ClientSecurityOptions

    @Option(help: "Nodes to learn the cluster from, HOST:PORT[,HOST:PORT...] (env AEROCACHE_ENDPOINTS).")
    var endpoints: String = ProcessInfo.processInfo.environment["AEROCACHE_ENDPOINTS"] ?? "127.0.0.1:7400"
    @Option(help: "Measured time (seconds, or 500ms, 1m...).") var duration: String = "10s"
    @Option(help: "Time run before measuring starts.") var warmup: String = "2s"
    @Option(help: "Workers.") var concurrency: Int = 50
    @Option(help: "Calls each worker sends together, awaiting all before the next batch (as memtier's --pipeline).") var depth: Int = 1
    @Option(help: "HTTP/2 connections per node.") var connections: Int = 1
    @Option(help: "Event-loop threads driving the connections (workers run on them).") var threads: Int = 1
    @Option(help: "Size of the keyspace (keys are 16 bytes: key:000000000042).") var keys: Int = 100_000
    @Option(help: "uniform, zipf, or zipf:S.") var keyDistribution: String = "uniform"
    @Option(help: "Value size in bytes for sets.") var valueSize: Int = 100
    @Option(help: "Operation weights, e.g. get=90,set=10 (get, set, has, incr, del).") var mix: String = "get=90,set=10"
    @Option(help: "Open-loop rate in operations per second; 0 runs a closed loop.") var rate: Double = 0
    @Option(help: "one, quorum or all.") var consistency: Consistency?
    @Option(help: "Deadline per call.") var timeout: String = "5s"
    @Flag(help: "Write every key once before the run, so reads hit (with --duration 0: load and stop).") var prefill = false
    @Option(help: "Also write the results as JSON to this file.") var json: String?
    @Option(help: "Also write the latency distribution (ms) in HdrHistogram's percentile format to this file.") var hdrOut: String?
    @Flag(help: "Send every call to the endpoints in turn instead of to its key's replicas.") var noRouting = false

    func run() async throws {
        let addresses: [HostPort]
        let settings: Runner.Settings
        let workload: Workload
        do {
            addresses = try endpoints.split(separator: ",").map { text throws(InputError) in try HostPort(parsing: String(text)) }
            guard concurrency > 0, depth > 0, connections > 0, threads > 0, valueSize >= 0, rate >= 0 else {
                throw BenchError("--concurrency, --depth, --connections and --threads must be at least 1; --value-size and --rate at least 0")
            }
            guard !addresses.isEmpty else { throw BenchError("--endpoints names no node") }
            guard depth == 1 || rate == 0 else { throw BenchError("--depth applies to the closed loop; leave --rate at 0") }
            workload = try Workload(keyCount: keys, distribution: try .init(parsing: keyDistribution), mix: mix)
            settings = Runner.Settings(
                duration: .milliseconds(try DurationText.milliseconds(duration)),
                warmup: .milliseconds(try DurationText.milliseconds(warmup)),
                concurrency: concurrency, depth: depth, rate: rate, valueSize: valueSize,
                consistency: consistency,
                progress: isatty(STDERR_FILENO) != 0)
        } catch let error as InputError {
            throw ArgumentParser.ValidationError(error.message)
        } catch let error as BenchError {
            throw ArgumentParser.ValidationError(error.description)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var configuration = AeroCache.Configuration(seeds: addresses)
        configuration.timeout = .milliseconds(try DurationText.milliseconds(timeout))
        configuration.connectionsPerNode = connections
        configuration.routesToReplicas = !noRouting
        configuration.tls = try security.tls()
        configuration.token = try security.token()
        var logger = Logger(label: "aerocache-bench")
        logger.logLevel = .warning
        let client = AeroCache(configuration: configuration, eventLoopGroup: group, logger: logger)
        if !noRouting {
            do { try await client.refreshTopology() } catch { throw CommandFailure("\(error)") }
        }
        let executors = (0..<threads).map { _ in EventLoopTaskExecutor(eventLoop: group.next()) }
        let runner = Runner(settings: settings, workload: workload, client: client, executors: executors)
        var prefillReport: [String: Any]?
        if prefill {
            do {
                let (count, seconds) = try await runner.prefill()
                print("prefill: \(count) keys in \(String(format: "%.1f", seconds)) s")
                prefillReport = ["keys": count, "seconds": seconds]
            } catch {
                throw CommandFailure("prefill failed: \(error)")
            }
        }
        if prefill && settings.duration == .zero {
            await client.close()
            try? await group.shutdownGracefully()
            return  // --prefill --duration 0: load only
        }
        let (tally, seconds, cpuPerOperation) = await runner.run()
        await client.close()
        try? await group.shutdownGracefully()

        let report = Report(tally: tally, seconds: seconds, cpuMicrosPerOperation: cpuPerOperation)
        print(report.text(header: "\(String(format: "%.1f", seconds)) s, \(concurrency) workers\(depth > 1 ? " × depth \(depth)" : ""), "
                          + (noRouting ? "to \(addresses.count) endpoint(s) in turn, " : "routed to the key's replicas, ")
                          + "\(connections) connection(s) per node, "
                          + "\(keys) keys (\(workload.distribution)), \(valueSize)-byte values, mix \(mix), "
                          + (rate > 0 ? "open loop at \(Int(rate)) ops/s" : "closed loop")))
        if let json {
            var config: [String: Any] = [
                "endpoints": endpoints, "duration_s": seconds, "warmup": warmup, "concurrency": concurrency,
                "connections": connections, "depth": depth, "routing": !noRouting, "keys": keys, "key_distribution": "\(workload.distribution)",
                "value_size": valueSize, "mix": mix, "rate": rate, "consistency": consistency?.rawValue ?? "default",
            ]
            if let prefillReport { config["prefill"] = prefillReport }
            try report.writeJSON(to: json, config: config)
        }
        if let hdrOut {
            var text = ""
            tally.histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
            do { try text.write(toFile: hdrOut, atomically: true, encoding: .utf8) } catch {
                throw CommandFailure("cannot write \(hdrOut): \(error.localizedDescription)")
            }
        }
        if tally.operations == 0 { throw CommandFailure("no operation completed") }
    }}
