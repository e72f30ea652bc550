import AeroCacheClient
import AeroCacheCommandLine
import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import ArgumentParser
import Foundation

struct DecommissionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decommission",
        abstract: "Hand a live node's data to its new owners; then it leaves the ring and stops.",
        discussion: """
            Reads and writes go on throughout. The command follows the node's streaming until it
            has left (up to --wait), printing progress.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The node's id, as `status` shows it.") var nodeID: String
    @Option(help: "How long to follow the node before giving up waiting (it goes on regardless).")
    var wait: String = "30m"

    func run() async throws {
        let deadline = try deadline(wait)
        let (address, others) = try await global.withClient { client in
            let status = try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: client.timeout)
            guard let member = status.nodes.first(where: { $0.id == nodeID }) else {
                throw CommandFailure("\(nodeID) is not a member of this cluster (status lists \(status.nodes.map(\.id).joined(separator: ", ")))")
            }
            return (member.address, status.nodes.filter { $0.id != nodeID && $0.state != "down" }.map(\.address))
        }
        var request = Aerocache_V1_DecommissionRequest()
        request.nodeID = nodeID
        _ = try await global.withClient(at: address) { client in
            try await client.connection.unary(AdminMethods.decommission, request, timeout: client.timeout)
        }
        let line = ProgressLine(json: global.json)
        line.show("\(nodeID): leaving")
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            guard let own = try? await global.withClient(at: address, { client in
                try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: .seconds(2))
            }).nodes.first(where: { $0.id == nodeID }) else { break }  // it stopped
            line.show("\(nodeID): \(own.state)" + (own.hasStreaming ? ", " + describe(own.streaming) : ""))
        }
        // Gone from the node that stops: make sure the others agree (asked directly: the
        // endpoint given may be the node that left).
        let survivors = others.isEmpty ? global.endpoints : others.joined(separator: ",")
        while ContinuousClock.now < deadline {
            // A survivor too busy to answer in time is asked again.
            let listed = try? await global.withClient(at: survivors) { client in
                try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: client.timeout)
            }.nodes.contains { $0.id == nodeID }
            if listed == false {
                line.finish("\(nodeID) handed its ranges over and left the ring")
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        line.finish(nil)
        throw CommandFailure("\(nodeID) has not left the ring within --wait \(wait); `status` shows how far it got")
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Forget a dead node; the others re-replicate its ranges from the remaining copies.",
        discussion: """
            Refused while the node is alive (decommission it instead). The command follows the
            re-replication until every node that gained ranges has them (up to --wait).
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The node's id, as `status` shows it.") var nodeID: String
    @Option(help: "How long to follow the re-replication before giving up waiting (it goes on regardless).")
    var wait: String = "30m"

    func run() async throws {
        let deadline = try deadline(wait)
        var request = Aerocache_V1_RemoveRequest()
        request.nodeID = nodeID
        _ = try await global.withClient { client in
            try await client.connection.unary(AdminMethods.remove, request, timeout: client.timeout)
        }
        let line = ProgressLine(json: global.json)
        line.show("\(nodeID) removed; re-replicating its ranges")
        var quietPolls = 0
        // Nodes that gained ranges start at once; a few polls without any streaming means done.
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            let streaming = await global.everyNodeStatus().filter {
                $0.hasStreaming && $0.streaming.purpose == "re-replicating" && !$0.streaming.done
            }
            if streaming.isEmpty {
                quietPolls += 1
                if quietPolls >= 4 {
                    line.finish("\(nodeID) removed; its ranges have their copies again")
                    return
                }
                continue
            }
            quietPolls = 0
            line.show(streaming.map { "\($0.id): \(describe($0.streaming))" }.joined(separator: "; "))
        }
        line.finish(nil)
        throw CommandFailure("re-replication has not ended within --wait \(wait); `status` shows how far it got")
    }
}

/// The instant `text` (a duration) from now.
private func deadline(_ text: String) throws -> ContinuousClock.Instant {
    do {
        return ContinuousClock.now + .milliseconds(try DurationText.milliseconds(text))
    } catch {
        throw UsageError("--wait: \(error.message)")
    }
}

/// "joining: 12/40 ranges, 3.1 MiB, about 5 s left".
func describe(_ progress: Aerocache_V1_StreamProgress) -> String {
    var text = "\(progress.purpose): \(progress.rangesDone)/\(progress.rangesTotal) ranges, "
        + String(format: "%.1f MiB", Double(progress.bytes) / 1_048_576)
    if progress.done {
        text += ", done"
    } else if progress.etaMs >= 0 {
        text += ", about \(max(progress.etaMs / 1000, 1)) s left"
    }
    return text
}

/// A line of progress: rewritten in place on a terminal, one plain line per change otherwise.
final class ProgressLine {
    private let inPlace: Bool
    private let quiet: Bool
    private var last = ""

    init(json: Bool) {
        quiet = json
        inPlace = isatty(STDOUT_FILENO) != 0
    }

    func show(_ text: String) {
        guard !quiet, text != last else { return }
        last = text
        if inPlace {
            print("\r\u{1B}[2K" + text, terminator: "")
            fflush(nil)
        } else {
            print(text)
        }
    }

    /// Ends the line with `text` (nil: leaves the last one).
    func finish(_ text: String?) {
        if quiet {
            if let text { printJSON(["result": text]) }
            return
        }
        if inPlace { print(text.map { "\r\u{1B}[2K" + $0 } ?? "") } else if let text { print(text) }
    }
}

extension GlobalOptions {
    /// Runs `body` against the node at `address` (with the command's timeout).
    func withClient<Result>(at address: String, _ body: (CacheClient) async throws -> Result) async throws -> Result {
        var options = self
        options.endpoints = address
        return try await options.withClient(body)
    }

    /// Every member the first endpoint names, each as it reports itself (down ones as seen).
    func everyNodeStatus() async -> [Aerocache_V1_NodeStatus] {
        guard let view = try? await withClient({ client in
            try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: client.timeout)
        }) else { return [] }
        var nodes: [Aerocache_V1_NodeStatus] = []
        for member in view.nodes {
            guard member.state != "down",
                  let own = try? await withClient(at: member.address, { client in
                      try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: .seconds(2))
                  }).nodes.first(where: { $0.id == member.id }) else {
                nodes.append(member)
                continue
            }
            var mine = own
            mine.state = member.state
            nodes.append(mine)
        }
        return nodes
    }
}
