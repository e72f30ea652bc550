import AeroCacheClient
import AeroCacheCore
import AeroCacheNode
import AeroCacheRPC
import AeroCacheTestKit
import Testing

/// The services and the coordinator of real nodes forming a cluster in this process, through
/// the Swift client over loopback.
@Suite(.serialized) struct ClusterCoordinatorTests {
    @Test func aWriteAtAllIsOnEveryReplicaWhenItIsAcknowledged() async throws {
        try await withTestCluster(count: 3) { nodes in
            let cache = nodes[1].client()
            for index in 0..<20 {
                try await cache.set("all-\(index)", [UInt8(index)], consistency: .all)
                for node in nodes {
                    #expect(node.node.store.read("all-\(index)") { $0.value.first } == UInt8(index))
                }
            }
            let other = nodes[2].client()
            #expect(try await other.get("all-7", consistency: .all)?.value == [7])
            await cache.close()
            await other.close()
        }
    }

    @Test func aNodeThatHoldsNoReplicaForwardsToTheKeysOwner() async throws {
        try await withTestCluster(count: 3, configure: { _, configuration in configuration.cluster.replicationFactor = 1 }) { nodes in
            let view = nodes[0].node.cluster.view
            // A key that node 0 does not hold: written through node 0, it lands on its owner only.
            let key = (0...).lazy.map { "forwarded-\($0)" }.first { !view.holdsReplica(ofKey: $0) }!
            let owner = try #require(view.replicas(forKey: key).first)
            let cache = nodes[0].client()
            try await cache.set(key, [42])
            #expect(try await cache.get(key)?.value == [42])
            for node in nodes {
                #expect(node.node.store.contains(key) == (node.node.nodeID == owner.id))
            }
            await cache.close()
        }
    }

    @Test func aWriteNeedingMoreLiveReplicasIsRefusedBeforeAnythingIsWritten() async throws {
        try await withTestCluster(count: 3) { nodes in
            nodes[2].node.initiateGracefulShutdown()
            try await waitUntil(seconds: 30, "node 0 never saw node 2 go down") {
                nodes[0].node.cluster.view.alive.count == 2
            }
            let cache = nodes[0].client()
            do {
                try await cache.set("refused", [1], consistency: .all)
                Issue.record("a write at all succeeded with one of three replicas down")
            } catch let error as RPCError {
                #expect(error.code == .unavailable)
                #expect(error.message == "2 of 3 replicas are alive; the call needs 3")
            }
            #expect(!nodes[0].node.store.contains("refused"))
            #expect(!nodes[1].node.store.contains("refused"))
            // A quorum still has two replicas: it goes on.
            try await cache.set("quorum", [2], consistency: .quorum)
            let reader = nodes[1].client()
            #expect(try await reader.get("quorum", consistency: .quorum)?.value == [2])
            await reader.close()
            await cache.close()
        }
    }

    @Test func aForwardToAReplicaThatCannotBeReachedGoesToTheNextOne() async throws {
        try await withTestCluster(count: 3, configure: { _, configuration in
            configuration.cluster.replicationFactor = 2
            // Node 0 keeps seeing a stopped node up for a minute: the forward itself must find out.
            configuration.cluster.membership.detector.acceptablePauseMillis = 60_000
        }) { nodes in
            let view = nodes[0].node.cluster.view
            let key = (0...).lazy.map { "unreachable-\($0)" }.first { !view.holdsReplica(ofKey: $0) }!
            let replicas = view.replicas(forKey: key)
            let first = try #require(nodes.first { $0.node.nodeID == replicas[0].id })
            let second = try #require(nodes.first { $0.node.nodeID == replicas[1].id })
            first.node.initiateGracefulShutdown()
            let probe = first.client()
            let deadline = ContinuousClock.now + .seconds(10)
            while await rpcError(of: { _ = try await probe.isServing() })?.neverSent != true {
                try #require(ContinuousClock.now < deadline, "the stopped node still took connections after 10 s")
                try await Task.sleep(for: .milliseconds(20))
            }
            await probe.close()
            #expect(nodes[0].node.cluster.view.alive.contains(first.node.nodeID), "node 0 has not noticed yet")
            let cache = nodes[0].client()
            try await cache.set(key, [7], consistency: .one)
            #expect(second.node.store.read(key) { Array($0.value) } == [7])
            await cache.close()
        }
    }
}
