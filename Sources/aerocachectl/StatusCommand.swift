import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport
import ArgumentParser
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Every node: id, address, state, keys, memory, ring epoch.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let reply = try await global.withClient { client in
            try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: client.timeout)
        }
        let nodes = reply.nodes.sorted { $0.id < $1.id }
        if global.json {
            printJSON(["nodes": nodes.map { node -> [String: Any] in
                ["id": node.id, "address": node.address, "state": node.state, "keys": node.keys,
                 "memory_bytes": node.memoryBytes, "ring_epoch": node.ringEpoch, "max_memory_bytes": node.maxMemoryBytes,
                 "evictions": node.evictions, "entries": node.entries, "resident_bytes": node.residentBytes]
            }])
            return
        }
        let rows = [["ID", "ADDRESS", "STATE", "KEYS", "MEMORY", "MAX MEMORY", "EVICTIONS", "EPOCH"]] + nodes.map { node in
            [node.id, node.address, node.state, "\(node.keys)", mebibytes(node.memoryBytes), mebibytes(node.maxMemoryBytes),
             "\(node.evictions)", "\(node.ringEpoch)"]
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }

    private func mebibytes(_ bytes: Int64) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
