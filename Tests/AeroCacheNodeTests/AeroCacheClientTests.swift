import AeroCacheClient
import AeroCacheCore
import AeroCacheNode
import AeroCacheRPC
import AeroCacheTestKit
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The smart client against real nodes in this process: routing, typed values, batches,
/// cache-aside coalescing and cancellation.
@Suite(.serialized) struct AeroCacheClientTests {
    private func client(_ nodes: [TestNode], timeout: Duration = .seconds(5)) -> AeroCache {
        var configuration = AeroCache.Configuration(seeds: [nodes[0].endpoint])
        configuration.timeout = timeout
        return AeroCache(configuration: configuration)
    }

    @Test func everyCallGoesToAReplicaOfItsKey() async throws {
        try await withTestCluster(count: 4, configure: { _, configuration in configuration.cluster.replicationFactor = 1 }) { nodes in
            let cache = client(nodes)
            for index in 0..<200 {
                try await cache.set("routed-\(index)", [UInt8(index % 256)])
                #expect(try await cache.get("routed-\(index)") == [UInt8(index % 256)])
                #expect(try await cache.has("routed-\(index)"))
                #expect(try await cache.increment("routed-counter-\(index)") == 1)
                #expect(try await cache.delete("routed-\(index)"))
            }
            // With one copy per key, any call that reached another node was forwarded.
            #expect(nodes.map { $0.node.forwardedCount } == [0, 0, 0, 0])
            #expect(nodes.allSatisfy { $0.node.store.liveKeyCount() > 0 })

            // The check can fail: the single-node client sends every call to node 0.
            let plain = nodes[0].client()
            for index in 0..<20 { _ = try await plain.get("routed-\(index)") }
            #expect(nodes[0].node.forwardedCount > 0)
            await plain.close()
            await cache.close()
        }
    }

    @Test func typedValuesBatchesAndMetadata() async throws {
        struct Flags: Codable, Equatable { var newCheckout: Bool; var rollout: Int }
        try await withTestCluster(count: 3) { nodes in
            let cache = client(nodes)
            try await cache.set("flags", Flags(newCheckout: true, rollout: 25), metadata: ["owner": "payments"])
            #expect(try await cache.get("flags", as: Flags.self) == Flags(newCheckout: true, rollout: 25))
            #expect(try await cache.getWithMetadata("flags")?.metadata == ["owner": "payments"])
            try await cache.set("greeting", "hello")
            #expect(try await cache.get("greeting") == Array("hello".utf8))  // text is stored as UTF-8, not JSON
            #expect(try await cache.get("greeting", as: String.self) == "hello")
            await #expect(throws: AeroCacheError.self) { try await cache.get("greeting", as: Flags.self) }
            #expect(try await cache.get("missing", as: Flags.self) == nil)

            let keys = (0..<1200).map { "batch-\($0)" }
            try await cache.setMany(keys.map { (key: $0, value: Array($0.utf8)) }, ttl: .seconds(60))
            let read = try await cache.getMany(keys + ["batch-missing"])
            #expect(read.count == 1201)
            #expect(read.prefix(1200).map { $0.map { String(decoding: $0.value, as: UTF8.self) } } == keys)
            #expect(read[1200] == nil)
            #expect(read[0]?.expiresAtUnixMilliseconds != nil)
            await #expect(throws: AeroCacheError.self) { try await cache.set("bad-ttl", [1], ttl: .seconds(-1)) }
            do throws(AeroCacheError) {
                try await cache.set("", [1])
                Issue.record("an empty key was accepted")
            } catch {
                #expect(error.code == .invalidArgument)
            }
            await cache.close()
        }
    }

    @Test func concurrentMissesOfOneKeyRunTheLoaderOnce() async throws {
        try await withTestCluster(count: 3) { nodes in
            let cache = client(nodes)
            let loads = Tally()
            let values = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        try await cache.getOrSet("leaderboard", ttl: .seconds(30)) { () async throws -> [String] in
                            loads.add()
                            try await Task.sleep(for: .milliseconds(200))
                            return ["ada", "grace"]
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(loads.count == 1)
            #expect(values.count == 200 && values.allSatisfy { $0 == ["ada", "grace"] })
            // Stored: the next call (and another client) reads it without loading.
            let again = try await cache.getOrSet("leaderboard", ttl: .seconds(30)) { () async throws -> [String] in
                loads.add()
                return []
            }
            #expect(again == ["ada", "grace"] && loads.count == 1)
            #expect(try await client(nodes).get("leaderboard", as: [String].self) == ["ada", "grace"])

            // A loader's failure reaches every waiter, and nothing is stored.
            struct SourceDown: Error {}
            await #expect(throws: AeroCacheError.self) {
                try await cache.getOrSet("failing", ttl: .seconds(5)) { () async throws -> Int in throw SourceDown() }
            }
            #expect(try await cache.has("failing") == false)
            await cache.close()
        }
    }

    @Test func aCancelledWaiterOfAGetOrSetIsFreedAtOnceAndTheOthersStillGetTheValue() async throws {
        try await withTestCluster(count: 1) { nodes in
            let cache = client(nodes)
            let release = AsyncStream<Void>.makeStream()
            let loader: @Sendable () async throws -> Int = {
                for await _ in release.stream { break }
                return 7
            }
            let patient = Task { try await cache.getOrSet("slow", ttl: .seconds(30), loader: loader) }
            let impatient = Task { try await cache.getOrSet("slow", ttl: .seconds(30), loader: loader) }
            try await Task.sleep(for: .milliseconds(100))
            impatient.cancel()
            let started = ContinuousClock.now
            await #expect(throws: AeroCacheError.self) { try await impatient.value }
            #expect(ContinuousClock.now - started < .seconds(1))
            release.continuation.yield()
            #expect(try await patient.value == 7)
            await cache.close()
        }
    }

    @Test func cancellingACallThatWaitsOnASilentNodeFreesIt() async throws {
        // A server that accepts connections and never answers: a call to it waits for its deadline.
        let group = MultiThreadedEventLoopGroup.singleton
        let silent = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = silent.localAddress!.port!
        var configuration = AeroCache.Configuration(seeds: [HostPort(host: "127.0.0.1", port: port)])
        configuration.timeout = .seconds(30)
        configuration.routesToReplicas = false
        let cache = AeroCache(configuration: configuration)
        let call = Task { try await cache.get("anything") }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        call.cancel()
        do {
            _ = try await call.value
            Issue.record("a cancelled call answered")
        } catch let error as AeroCacheError {
            #expect(error.code == .cancelled)
        }
        #expect(ContinuousClock.now - started < .seconds(1))

        // Deadlines hold too: a short one ends the wait with DEADLINE_EXCEEDED.
        configuration.timeout = .milliseconds(300)
        let hurried = AeroCache(configuration: configuration)
        do throws(AeroCacheError) {
            _ = try await hurried.get("anything")
            Issue.record("a call to a silent node answered")
        } catch {
            #expect(error.code == .deadlineExceeded)
        }
        await cache.close()
        await hurried.close()
        try await silent.close()
    }
}

extension ForwardedGetsTests {
    /// Forty values of 1 MiB (the largest allowed) read at once through a node that holds none
    /// of them: a full batch's answer would pass the 16 MiB limit, so the gets go out one by
    /// one instead of failing.
    @Test func largeValuesReadThroughANodeThatHoldsNoneOfThemAllArrive() async throws {
        try await withTestCluster(count: 3, configure: { _, configuration in configuration.cluster.replicationFactor = 1 }) { nodes in
            let view = nodes[0].node.cluster.view
            let keys = Array((0..<500).map { "large-\($0)" }.filter { !view.holdsReplica(ofKey: $0) }.prefix(40))
            var configuration = AeroCache.Configuration(seeds: [nodes[0].endpoint])
            configuration.timeout = .seconds(20)
            let routed = AeroCache(configuration: configuration)
            for (index, key) in keys.enumerated() {
                try await routed.set(key, [UInt8](repeating: UInt8(index), count: 1 << 20))
            }
            let plain = nodes[0].client(timeout: .seconds(20))
            let sizes = try await withThrowingTaskGroup(of: (Int, [UInt8]?).self) { group in
                for (index, key) in keys.enumerated() { group.addTask { (index, try await plain.get(key)?.value) } }
                return try await group.reduce(into: [Int: [UInt8]?]()) { $0[$1.0] = $1.1 }
            }
            for index in keys.indices {
                // memcmp, not ==: a debug build's == over 40 MiB holds one of the 2 threads the
                // whole test run shares for seconds.
                let expected = [UInt8](repeating: UInt8(index), count: 1 << 20)
                let same = sizes[index]!.map { got in
                    got.count == expected.count && got.withUnsafeBytes { g in expected.withUnsafeBytes { memcmp(g.baseAddress!, $0.baseAddress!, $0.count) == 0 } }
                }
                #expect(same == true, "\(keys[index])")
            }
            await plain.close()
            await routed.close()
        }
    }
}

/// A count shared by concurrent tasks.
private final class Tally: Sendable {
    private let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// Gets a node forwards in one tick travel as one batch: each caller still gets its own key's answer.
@Suite(.serialized) struct ForwardedGetsTests {
    @Test func concurrentForwardedGetsEachGetTheirOwnAnswer() async throws {
        try await withTestCluster(count: 3, configure: { _, configuration in configuration.cluster.replicationFactor = 1 }) { nodes in
            let view = nodes[0].node.cluster.view
            let keys = (0..<2000).map { "batched-\($0)" }.filter { !view.holdsReplica(ofKey: $0) }.prefix(400)
            var configuration = AeroCache.Configuration(seeds: [nodes[0].endpoint])
            configuration.timeout = .seconds(10)
            let routed = AeroCache(configuration: configuration)
            // Every other key is written; the rest must read as missing.
            try await routed.setMany(keys.enumerated().filter { $0.offset % 2 == 0 }.map { (key: $0.element, value: Array($0.element.utf8)) })
            let plain = nodes[0].client()
            let before = nodes[0].node.forwardedCount
            let answers = try await withThrowingTaskGroup(of: (String, [UInt8]?).self) { group in
                for key in keys { group.addTask { (key, try await plain.get(key)?.value) } }
                return try await group.reduce(into: [String: [UInt8]?]()) { $0[$1.0] = $1.1 }
            }
            for (index, key) in keys.enumerated() {
                #expect(answers[key]! == (index % 2 == 0 ? Array(key.utf8) : nil), "\(key)")
            }
            #expect(nodes[0].node.forwardedCount - before == keys.count)
            await plain.close()
            await routed.close()
        }
    }
}
