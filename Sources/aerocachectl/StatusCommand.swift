import AeroCacheClient
import AeroCacheCommandLine
import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import ArgumentParser
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Every node: id, address, state, keys, memory, ring epoch.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (tls, token) = (try global.security.tls(), try global.security.token())
        let nodes = try await global.withClient { client in
            let view = try await client.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: client.timeout)
            // Each node reports its own keys and memory: ask every member the view names.
            return await withTaskGroup(of: Aerocache_V1_NodeStatus.self) { group in
                for member in view.nodes {
                    group.addTask {
                        guard member.state != "down", let address = try? HostPort(parsing: member.address) else { return member }
                        let peer = CacheClient(endpoint: address, eventLoopGroup: client.connection.eventLoopGroup, timeout: .seconds(2),
                                               token: token, tls: tls)
                        let own = try? await peer.connection.unary(AdminMethods.status, Aerocache_V1_StatusRequest(), timeout: .seconds(2))
                        await peer.close()
                        guard var mine = own?.nodes.first(where: { $0.id == member.id }) else { return member }
                        mine.state = member.state
                        return mine
                    }
                }
                var all: [Aerocache_V1_NodeStatus] = []
                for await node in group { all.append(node) }
                return all.sorted { $0.id < $1.id }
            }
        }
        if global.json {
            printJSON(["nodes": nodes.map { node -> [String: Any] in
                ["id": node.id, "address": node.address, "state": node.state, "keys": node.keys,
                 "memory_bytes": node.memoryBytes, "ring_epoch": node.ringEpoch, "max_memory_bytes": node.maxMemoryBytes,
                 "evictions": node.evictions, "entries": node.entries, "resident_bytes": node.residentBytes,
                 "streaming": node.hasStreaming ? [
                    "purpose": node.streaming.purpose, "ranges_total": node.streaming.rangesTotal,
                    "ranges_done": node.streaming.rangesDone, "bytes": node.streaming.bytes,
                    "eta_ms": node.streaming.etaMs, "done": node.streaming.done,
                 ] as [String: Any] : NSNull()]
            }])
            return
        }
        printTable([["ID", "ADDRESS", "STATE", "KEYS", "MEMORY", "MAX MEMORY", "EVICTIONS", "EPOCH", "STREAMING"]] + nodes.map { node in
            [node.id, node.address, node.state, "\(node.keys)", mebibytes(node.memoryBytes), mebibytes(node.maxMemoryBytes),
             "\(node.evictions)", "\(node.ringEpoch)", node.hasStreaming && !node.streaming.done ? describe(node.streaming) : "-"]
        })
    }

    private func mebibytes(_ bytes: Int64) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}

struct RingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ring", abstract: "Ownership share of each node.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let reply = try await global.withClient { try await $0.connection.unary(AdminMethods.ring, Aerocache_V1_RingRequest(), timeout: $0.timeout) }
        let ring = reply.ring
        let shares = ring.primaryShares()
        if global.json {
            printJSON(["epoch": reply.epoch, "replication_factor": reply.replicationFactor,
                       "hints_pending": reply.hintsPending, "forwarded_requests": reply.forwardedRequests,
                       "nodes": reply.members.map { ["id": $0.id, "address": $0.address, "zone": $0.zone, "state": $0.state,
                                                     "tokens": $0.tokens.count, "share": shares[$0.id] ?? 0] }])
            return
        }
        print("epoch \(reply.epoch), replication factor \(reply.replicationFactor)")
        printTable([["ID", "ADDRESS", "ZONE", "STATE", "TOKENS", "PRIMARY SHARE"]] + reply.members.map {
            [$0.id, $0.address, $0.zone.isEmpty ? "-" : $0.zone, $0.state, "\($0.tokens.count)",
             String(format: "%.2f%%", (shares[$0.id] ?? 0) * 100)]
        })
    }
}

struct OwnersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "owners", abstract: "The key's replica nodes in preference order.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        let reply = try await global.withClient { try await $0.connection.unary(AdminMethods.ring, Aerocache_V1_RingRequest(), timeout: $0.timeout) }
        let owners = reply.ring.preferenceList(forKey: key, count: Int(reply.replicationFactor))
        let states = Dictionary(uniqueKeysWithValues: reply.members.map { ($0.id, $0.state) })
        if global.json {
            printJSON(["key": key, "owners": owners.map { ["id": $0.id, "address": $0.address, "state": states[$0.id] ?? "down"] }])
            return
        }
        for (rank, owner) in owners.enumerated() {
            print("\(rank + 1)  \(owner.id)  \(owner.address)  \(states[owner.id] ?? "down")")
        }
    }
}

/// Prints rows as left-aligned columns.
func printTable(_ rows: [[String]]) {
    let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}
