import AeroCacheClient
import AeroCacheCore
import AeroCacheProto
import AeroCacheTestKit
import AeroCacheRPC
import AeroCacheTransport
import Foundation
import Testing

/// The Cache service through a real node and the Swift client over loopback.
@Suite struct CacheNodeTests {
    @Test func setGetHasDeleteIncrementAndHealth() async throws {
        try await withTestNode { node in
            let cache = node.client()
            #expect(try await cache.isServing())
            #expect(try await cache.get("user:1") == nil)
            try await cache.set("user:1", Array("alice".utf8), metadata: ["source": "db"])
            let entry = try #require(try await cache.get("user:1"))
            #expect(entry.value == Array("alice".utf8))
            #expect(entry.metadata == ["source": "db"])
            #expect(entry.expiresAtUnixMilliseconds == nil)
            #expect(try await cache.has("user:1"))
            #expect(try await cache.delete("user:1"))
            #expect(try await !cache.has("user:1"))
            #expect(try await cache.get("user:1") == nil)
            #expect(try await cache.increment("hits") == 1)
            #expect(try await cache.increment("hits", by: 41) == 42)
            await cache.close()
        }
    }

    @Test func ttlExpiresEntries() async throws {
        try await withTestNode { node in
            let cache = node.client()
            // Timed from before the write, so a slow first call cannot make the entry look early;
            // a TTL long enough that a loaded machine still reads the entry back before it expires.
            let start = ContinuousClock.now
            let expiresAt = try await cache.set("flash", [1, 2, 3], ttl: .seconds(1))
            #expect(expiresAt > 0)
            if ContinuousClock.now - start < .milliseconds(800) {
                #expect(try await cache.get("flash")?.expiresAtUnixMilliseconds == expiresAt)
            }
            // Poll (bounded) until the entry is gone: it must vanish shortly after 1 s.
            while try await cache.has("flash") {
                try #require(ContinuousClock.now - start < .seconds(10), "the entry outlived its TTL by 9 s")
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(ContinuousClock.now - start >= .milliseconds(950))
            await cache.close()
        }
    }

    @Test func badInputGetsInvalidArgumentNamingTheLimit() async throws {
        try await withTestNode { node in
            let cache = node.client()
            try await expectStatus(.invalidArgument, containing: "empty") { try await cache.set("", [1]) }
            try await expectStatus(.invalidArgument, containing: "512") { _ = try await cache.get(String(repeating: "k", count: 513)) }
            try await expectStatus(.invalidArgument, containing: "1048576") {
                try await cache.set("big", [UInt8](repeating: 7, count: (1 << 20) + 1))
            }
            try await expectStatus(.invalidArgument, containing: "1024") {
                try await cache.set("meta", [1], metadata: ["k": String(repeating: "v", count: 1024)])
            }
            try await expectStatus(.invalidArgument, containing: "negative") { try await cache.set("neg", [1], ttl: .milliseconds(-5)) }
            try await cache.set("name", Array("alice".utf8))
            try await expectStatus(.failedPrecondition, containing: "integer") { _ = try await cache.increment("name") }
            // A key that is not UTF-8: hand-built GetRequest{key: 0xFF 0xFE}.
            try await expectStatus(.invalidArgument, containing: "UTF-8") {
                _ = try await cache.connection.unary(path: CacheMethods.get.path, payload: [0x0a, 2, 0xff, 0xfe])
            }
            // The node still serves.
            #expect(try await cache.get("name")?.value == Array("alice".utf8))
            await cache.close()
        }
    }

    @Test func unknownMethodIsUnimplemented() async throws {
        try await withTestNode { node in
            let cache = node.client()
            try await expectStatus(.unimplemented, containing: "/aerocache.v1.Cache/Nope") {
                _ = try await cache.connection.unary(path: "/aerocache.v1.Cache/Nope", payload: [])
            }
            try await expectStatus(.notFound, containing: "unknown service") {
                var request = Grpc_Health_V1_HealthCheckRequest()
                request.service = "no.such.Service"
                _ = try await cache.connection.unary(HealthMethods.check, request)
            }
            await cache.close()
        }
    }

    @Test func oversizedRequestIsResourceExhausted() async throws {
        try await withTestNode { node in
            let cache = node.client()
            try await expectStatus(.resourceExhausted, containing: "limit") {
                try await cache.set("huge", [UInt8](repeating: 1, count: 5 << 20))
            }
            #expect(try await cache.isServing(), "the same connection keeps working")
            await cache.close()
        }
    }

    @Test func largeValuesSpanManyFrames() async throws {
        try await withTestNode { node in
            let cache = node.client()
            // 1 MiB crosses 64 DATA frames of 16 KiB each way.
            let value = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try await cache.set("blob", value)
            #expect(try await cache.get("blob")?.value == value)
            await cache.close()
        }
    }

    @Test func twoHundredConcurrentCallsShareOneConnection() async throws {
        try await withTestNode { node in
            let cache = node.client()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let key = "k\(index)"
                        try await cache.set(key, Array(key.utf8))
                        #expect(try await cache.get(key)?.value == Array(key.utf8))
                        #expect(try await cache.increment("shared") > 0)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await cache.increment("shared", by: 0) == 200)
            await cache.close()
        }
    }
}

/// Runs `body` and checks that it fails with `code` and a message containing `fragment`.
func expectStatus(_ code: RPCError.Code, containing fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                  _ body: () async throws -> Void) async throws {
    let error = await rpcError(of: body)
    #expect(error?.code == code && error?.message.contains(fragment) == true, "\(String(describing: error))",
            sourceLocation: sourceLocation)
}

