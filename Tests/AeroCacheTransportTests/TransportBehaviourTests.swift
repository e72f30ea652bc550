import AeroCacheProto
import AeroCacheRPC
import AeroCacheTestKit
import AeroCacheTransport
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Deadlines, reconnects and graceful shutdown, on a server with methods made for the purpose.
@Suite struct TransportBehaviourTests {
    static let echo = MethodDescriptor<Grpc_Health_V1_HealthCheckRequest, Grpc_Health_V1_HealthCheckResponse>(
        service: "test.Slow", method: "Echo")

    /// Answers after sleeping the number of milliseconds named in `service` (`MS` or
    /// `MS:TOKEN`; a token is put in ``arrived`` when the call starts running).
    static let slowEcho = ServerMethod(echo) { request, _ in
        let parts = request.service.split(separator: ":", maxSplits: 1)
        if parts.count == 2 { arrived.withLock { _ = $0.insert(String(parts[1])) } }
        return .later {
            try await Task.sleep(for: .milliseconds(parts.first.flatMap { Int($0) } ?? 0))
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = .serving
            return response
        }
    }

    /// Tokens of calls that reached the server and run.
    static let arrived = Mutex<Set<String>>([])

    static func request(sleepMilliseconds: Int, token: String? = nil) -> Grpc_Health_V1_HealthCheckRequest {
        var request = Grpc_Health_V1_HealthCheckRequest()
        request.service = String(sleepMilliseconds) + (token.map { ":" + $0 } ?? "")
        return request
    }

    /// Runs a server on a free (or the given) port around `body`, then shuts it down gracefully.
    static func withServer<R: Sendable>(port: Int = 0, _ body: (GRPCServer, Int) async throws -> R) async throws -> R {
        let server = GRPCServer(
            configuration: .init(host: "127.0.0.1", port: port, shutdownGracePeriod: .seconds(5)),
            methods: [slowEcho], eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            defer { server.initiateGracefulShutdown() }
            let bound = try await server.localAddress.port ?? 0
            return try await body(server, bound)
        }
    }

    @Test func asyncHandlersAnswer() async throws {
        try await Self.withServer { _, port in
            let client = GRPCClientConnection(host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            let response = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 10))
            #expect(response.status == .serving)
            await client.close()
        }
    }

    @Test func clientDeadlineFailsTheCallAndTheConnectionLivesOn() async throws {
        try await Self.withServer { _, port in
            let client = GRPCClientConnection(host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            let start = ContinuousClock.now
            try await expectStatus(.deadlineExceeded, containing: "deadline") {
                _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 3_000), timeout: .milliseconds(100))
            }
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0)).status == .serving)
            await client.close()
        }
    }

    @Test func serverEnforcesGRPCTimeout() async throws {
        try await Self.withServer { _, port in
            // Send grpc-timeout 100 ms, but let the client wait 5 s longer: the answer that
            // comes is the server's own (its message says so), long before the client would give up.
            var configuration = GRPCClientConnection.Configuration()
            configuration.deadlineSlack = .seconds(5)
            let client = GRPCClientConnection(host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                                              configuration: configuration)
            let start = ContinuousClock.now
            try await expectStatus(.deadlineExceeded, containing: "before the call completed") {
                _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 3_000), timeout: .milliseconds(100))
            }
            #expect(ContinuousClock.now - start < .seconds(2))
            await client.close()
        }
    }

    @Test func aBusyServerAnswersThePingAndTheCallWaitsForItsAnswer() async throws {
        try await Self.withServer { _, port in
            let client = GRPCClientConnection(host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            // Unanswered after 500 ms, the call pings (twice); the server's event loop answers,
            // so the call waits the 1.6 s its handler takes.
            let response = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 1_600), timeout: .seconds(5),
                                                  probeAfter: .milliseconds(500))
            #expect(response.status == .serving)
            await client.close()
        }
    }

    @Test func aSilentServerFailsACallThatPingsAsPeerSilent() async throws {
        // Accepts connections and never answers anything (as a paused process would).
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = GRPCClientConnection(host: "127.0.0.1", port: silent.localAddress!.port!,
                                          eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let start = ContinuousClock.now
        let error = await rpcError {
            _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0), timeout: .seconds(60),
                                       probeAfter: .milliseconds(100))
        }
        #expect(error?.code == .unavailable && error?.peerSilent == true, "\(String(describing: error))")
        // ~0.2 s when idle; on a loaded CI machine the test's task waited 33 s for a thread to
        // resume on (every suite starts at once on 2 cores). Before the 60 s deadline either
        // way, and as peerSilent: the ping, not the deadline, ended it.
        #expect(ContinuousClock.now - start < .seconds(55))
        // Without a probe the call waits for its deadline, not for a ping.
        let waited = await rpcError {
            _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0), timeout: .milliseconds(400))
        }
        #expect(waited?.code == .deadlineExceeded && waited?.peerSilent == false, "\(String(describing: waited))")
        await client.close()
        try await silent.close()
    }

    @Test func aStoppedPeerIsUnavailableAndARestartedOneIsReachedAgain() async throws {
        let port = try await Self.withServer { _, port in port }
        let client = GRPCClientConnection(host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        try await expectStatus(.unavailable, containing: "cannot connect to 127.0.0.1:\(port): Connection refused") {
            _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0))
        }
        try await Self.withServer(port: port) { _, _ in
            // Bounded retry: the client backs off after the failed connect, then reconnects.
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                do {
                    #expect(try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0)).status == .serving)
                    break
                } catch let error as RPCError where error.code == .unavailable && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        await client.close()
    }

    @Test func gracefulShutdownFinishesInFlightCalls() async throws {
        try await Self.withServer { server, port in
            let client = GRPCClientConnection(host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0))
            // The shutdown starts once the slow call runs (a fixed pause was too short on a
            // loaded machine: the call then arrived after the GOAWAY and was refused).
            let token = "shutdown-\(port)"
            async let slow = client.unary(Self.echo, Self.request(sleepMilliseconds: 500, token: token))
            let waitUntil = ContinuousClock.now + .seconds(20)
            while !Self.arrived.withLock({ $0.contains(token) }) && ContinuousClock.now < waitUntil {
                try await Task.sleep(for: .milliseconds(5))
            }
            server.initiateGracefulShutdown()
            #expect(try await slow.status == .serving, "the call in flight at shutdown completes")
            // New calls find no server: the GOAWAY made the client drop the connection.
            try await expectStatus(.unavailable, containing: "cannot connect") {
                _ = try await client.unary(Self.echo, Self.request(sleepMilliseconds: 0))
            }
            await client.close()
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// Checks that `body` fails with `code` and a message containing `fragment`.
private func expectStatus(_ code: RPCError.Code, containing fragment: String, _ body: () async throws -> Void) async throws {
    let error = await rpcError(of: body)
    #expect(error?.code == code && error?.message.contains(fragment) == true, "\(String(describing: error))")
}
