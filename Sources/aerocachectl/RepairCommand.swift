import AeroCacheClient
import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport
import AeroCacheCommandLine
import ArgumentParser
import Foundation

struct RepairCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Run an anti-entropy round now on the first endpoint, and print what it repaired.",
        discussion: """
            The node compares its ranges with every live peer that shares them (or one, with --node),
            and swaps what differs. It waits for the round (up to 10 minutes, or --timeout if longer).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only with this peer (a node id, as `status` shows it).")
    var node: String?

    @Option(help: "Only the ring range that holds this key.")
    var range: String?

    func run() async throws {
        var request = Aerocache_V1_RepairRequest()
        request.nodeID = node ?? ""
        if let range {
            request.onlyRange = true
            request.rangeHash = XXHash64.hash(range)
        }
        let reply = try await global.withClient { client in
            try await client.connection.unary(AdminMethods.repair, request, timeout: max(client.timeout ?? .zero, .seconds(600)))
        }
        let repaired = reply.peers.reduce(0) { $0 + $1.repairedHere + $1.repairedThere }
        if global.json {
            printJSON(["repaired_keys": repaired, "peers": reply.peers.map { peer -> [String: Any] in
                ["node": peer.nodeID, "compared": peer.compared, "differing": peer.differing,
                 "repaired_here": peer.repairedHere, "repaired_there": peer.repairedThere, "bytes": peer.bytes,
                 "unmatched": peer.unmatched, "error": peer.error]
            }])
            return
        }
        if reply.peers.isEmpty { print("no live peer shares ranges with this node: nothing to compare") }
        for peer in reply.peers {
            var line = "with \(peer.nodeID): \(peer.compared) pieces compared, \(peer.differing) differed; "
                + "repaired \(peer.repairedHere) keys here, \(peer.repairedThere) there; "
                + String(format: "%.1f KiB", Double(peer.bytes) / 1024)
            if peer.unmatched > 0 { line += "; \(peer.unmatched) pieces cut otherwise there (its ring differs), compared next round" }
            if !peer.error.isEmpty { line += "; stopped early: \(peer.error)" }
            print(line)
        }
        print("repaired \(repaired) keys")
        if reply.peers.contains(where: { !$0.error.isEmpty }) {
            throw CommandFailure("a round stopped early; run repair again to resume it")
        }
    }
}
