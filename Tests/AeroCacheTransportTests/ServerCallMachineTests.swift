import AeroCacheProto
import AeroCacheRPC
@testable import AeroCacheTransport
import Testing

/// Every transition of ``ServerCallMachine``, driven without a socket.
@Suite struct ServerCallMachineTests {
    private static let get = ServerMethod(CacheMethods.get, permission: .role(.read)) { _, _ in .now(Aerocache_V1_GetResponse()) }
    private let router = ServerRouter([Self.get])
    private let credential = try! PeerCredential(secret: "0123456789abcdef-secret")

    private func header(_ call: inout ServerCallMachine, _ name: String, _ value: String) {
        let name = Array(name.utf8), value = Array(value.utf8)
        name.withUnsafeBytes { n in
            value.withUnsafeBytes { v in call.receiveHeader(name: n, value: v) }
        }
    }

    /// A call whose headers are those of a valid gRPC request, plus `extra`.
    private func call(path: String = CacheMethods.get.path, method: String = "POST",
                      contentType: String = "application/grpc+proto", extra: [(String, String)] = [],
                      maxMessageBytes: Int = 1024) -> ServerCallMachine {
        var call = ServerCallMachine(rules: .init(router: router, credential: credential, maxMessageBytes: maxMessageBytes))
        header(&call, ":method", method)
        header(&call, ":path", path)
        header(&call, "content-type", contentType)
        for (name, value) in extra { header(&call, name, value) }
        return call
    }

    private func data(_ call: inout ServerCallMachine, _ bytes: [UInt8]) -> ServerCallMachine.DataAction {
        bytes.withUnsafeBytes { call.receiveData($0) }
    }

    private func refusal(_ action: ServerCallMachine.HeadersAction) -> ServerCallMachine.Refusal? {
        if case .refuse(let refusal) = action { return refusal }
        return nil
    }

    private func runRequest(_ action: ServerCallMachine.RunAction) -> [UInt8]? {
        if case .run(let method, let request) = action, method.path == CacheMethods.get.path { return request }
        return nil
    }

    private func refusedError(_ action: ServerCallMachine.RunAction) -> RPCError? {
        if case .refuse(let error) = action { return error }
        return nil
    }

    // MARK: Headers

    @Test func aValidRequestIsReceivedWithoutADeadline() {
        var call = call()
        #expect(call.headersEnded(endStream: false, now: 100) == .receive(watchDeadline: false))
        #expect(call.phase == .receivingMessage)
        #expect(call.deadline == nil)
        #expect(call.method?.path == CacheMethods.get.path)
        #expect(!call.isPeer)
    }

    @Test func aTimeoutSetsTheDeadlineAndIsWatchedWhileTheBodyArrives() {
        var call = call(extra: [("grpc-timeout", "5M")])
        #expect(call.headersEnded(endStream: false, now: 1_000) == .receive(watchDeadline: true))
        #expect(call.deadline == 1_000 + 300_000_000_000)
        var ended = self.call(extra: [("grpc-timeout", "5M")])
        #expect(ended.headersEnded(endStream: true, now: 1_000) == .receive(watchDeadline: false))
    }

    @Test func refusalsComeInGRPCsOrderWithTheirHTTPStatus() {
        var notPost = call(path: "/nope/Nope", method: "GET", contentType: "text/plain")
        #expect(refusal(notPost.headersEnded(endStream: true, now: 0))?.httpStatus == 405)
        #expect(notPost.phase == .responding)

        var notGRPC = call(path: "/nope/Nope", contentType: "text/plain")
        #expect(refusal(notGRPC.headersEnded(endStream: true, now: 0))?.httpStatus == 415)

        var badTimeout = call(path: "/nope/Nope", extra: [("grpc-timeout", "soon")])
        let timeout = refusal(badTimeout.headersEnded(endStream: true, now: 0))
        #expect(timeout?.httpStatus == 200)
        #expect(timeout?.error.code == .internalError)
        #expect(timeout?.error.message.contains("grpc-timeout") == true)

        var gzip = call(path: "/nope/Nope", extra: [("grpc-encoding", "gzip")])
        let encoding = refusal(gzip.headersEnded(endStream: true, now: 0))
        #expect(encoding?.error.code == .unimplemented)
        #expect(encoding?.error.message.contains("gzip") == true)

        var identity = call(extra: [("grpc-encoding", "identity")])
        #expect(identity.headersEnded(endStream: true, now: 0) == .receive(watchDeadline: false))

        var unknown = call(path: "/nope/Nope")
        let path = refusal(unknown.headersEnded(endStream: true, now: 0))
        #expect(path == .init(httpStatus: 200, error: RPCError(.unimplemented, "unknown method /nope/Nope")))
    }

    @Test func aLongUnknownPathIsQuotedShort() {
        var call = call(path: "/" + String(repeating: "x", count: 5_000))
        let message = refusal(call.headersEnded(endStream: true, now: 0))?.error.message ?? ""
        #expect(message.hasSuffix("… (5001 bytes)"))
        #expect(message.utf8.count < 200)
    }

    @Test func theClusterSecretMakesAPeerCallAndNothingElseDoes() {
        var peer = call(extra: [(PeerCredential.headerNameString, "0123456789abcdef-secret")])
        #expect(peer.isPeer)
        var wrong = call(extra: [(PeerCredential.headerNameString, "0123456789abcdef-secreT")])
        #expect(!wrong.isPeer)
        // Without a credential configured no call is a peer call, whatever it sends.
        var open = ServerCallMachine(rules: .init(router: router, credential: nil, maxMessageBytes: 16))
        let name = Array(PeerCredential.headerNameString.utf8), value = Array("0123456789abcdef-secret".utf8)
        name.withUnsafeBytes { n in value.withUnsafeBytes { v in open.receiveHeader(name: n, value: v) } }
        #expect(!open.isPeer)
        _ = peer.headersEnded(endStream: true, now: 0)
        _ = wrong.headersEnded(endStream: true, now: 0)
    }

    @Test func theAuthorizationHeaderIsCheckedOnlyWhenTokensAreRequired() throws {
        let tokens = TokenRegistry(try AccessTokens(parsing: "writer-0123456789abcdef write\n"))
        func call(tokens: TokenRegistry?, _ headers: [(String, String)]) -> ServerCallMachine {
            var call = ServerCallMachine(rules: .init(router: router, credential: nil, tokens: tokens, maxMessageBytes: 16))
            for (name, value) in headers { header(&call, name, value) }
            return call
        }
        #expect(call(tokens: nil, [("authorization", "Bearer anything-at-all-here")]).token == .notRequired)
        #expect(call(tokens: tokens, []).token == .missing)
        #expect(call(tokens: tokens, [("authorization", "Bearer writer-0123456789abcdef")]).token == .valid(.write))
        #expect(call(tokens: tokens, [("authorization", "Bearer writer-0123456789abcdeF")]).token == .invalid)
        // A call without the right token is refused when its headers end, before its body is taken.
        var anonymous = call(tokens: tokens, [(":method", "POST"), (":path", CacheMethods.get.path), ("content-type", "application/grpc")])
        #expect(refusal(anonymous.headersEnded(endStream: false, now: 0))?.error.code == .unauthenticated)
        var member = call(tokens: tokens, [(":method", "POST"), (":path", CacheMethods.get.path), ("content-type", "application/grpc")])
        #expect(member.headersEnded(endStream: false, now: 0, memberConnection: true) == .receive(watchDeadline: false),
                "a member's connection needs no token for a data call")
        // Two headers are refused, whichever is valid.
        #expect(call(tokens: tokens, [("authorization", "Bearer x"), ("authorization", "Bearer writer-0123456789abcdef")]).token == .invalid)
        #expect(call(tokens: tokens, [("authorization", "Bearer writer-0123456789abcdef"), ("authorization", "Bearer x")]).token == .invalid)
    }

    @Test func onlyTheHeadersThatCanChangeACallAreWanted() {
        func wants(_ name: String) -> Bool { Array(name.utf8).withUnsafeBytes { ServerCallMachine.wants(headerNamed: $0) } }
        for name in [":path", ":method", "content-type", "grpc-timeout", "grpc-encoding", "authorization", PeerCredential.headerNameString] {
            #expect(wants(name), "\(name)")
        }
        for name in [":authority", ":scheme", "te", "user-agent", "content-typf", "grpc-timeouts", ""] {
            #expect(!wants(name), "\(name)")
        }
    }

    @Test func headersAfterTheirEndChangeNothingAndASecondEndIsIgnored() {
        var call = call()
        _ = call.headersEnded(endStream: false, now: 0)
        header(&call, "grpc-timeout", "1n")
        header(&call, ":path", "/nope/Nope")
        #expect(call.method?.path == CacheMethods.get.path)
        #expect(call.headersEnded(endStream: false, now: 0) == .ignore)
        #expect(call.deadline == nil)
    }

    // MARK: Body

    @Test func theDeclaredSizeIsReportedOnceWhenThePrefixCompletes() {
        var call = call()
        _ = call.headersEnded(endStream: false, now: 0)
        #expect(data(&call, [0, 0, 0]) == .kept(declaredMessageBytes: nil))
        #expect(data(&call, [0, 3, 1]) == .kept(declaredMessageBytes: 8))
        #expect(data(&call, [2, 3]) == .kept(declaredMessageBytes: nil))
        #expect(runRequest(call.requestEnded(answersMustWait: false, now: 0)) == [1, 2, 3])
        #expect(call.phase == .running)
    }

    @Test func anOversizedMessageIsRefusedFromItsPrefix() {
        var call = call(maxMessageBytes: 10)
        _ = call.headersEnded(endStream: false, now: 0)
        guard case .refuse(let error) = data(&call, [0, 0, 0, 0, 11]) else {
            Issue.record("not refused")
            return
        }
        #expect(error.code == .resourceExhausted)
    }

    @Test func dataIsDroppedUnlessTheMessageIsBeingReceived() {
        var early = call()
        #expect(data(&early, [0]) == .dropped)
        var answered = call()
        _ = answered.headersEnded(endStream: false, now: 0)
        _ = answered.answer()
        #expect(data(&answered, [0, 0, 0, 0, 0]) == .dropped)
        var refused = call(path: "/nope/Nope")
        _ = refused.headersEnded(endStream: false, now: 0)
        #expect(data(&refused, [0, 0, 0, 0, 0]) == .dropped)
    }

    // MARK: Running

    @Test func anIncompleteRequestIsRefusedAtItsEnd() {
        var call = call()
        _ = call.headersEnded(endStream: false, now: 0)
        _ = data(&call, [0, 0, 0, 0, 4, 1])
        #expect(refusedError(call.requestEnded(answersMustWait: false, now: 0)) != nil)
        var empty = self.call()
        _ = empty.headersEnded(endStream: true, now: 0)
        #expect(refusedError(empty.requestEnded(answersMustWait: false, now: 0)) != nil)
    }

    @Test func aRefusedCallNeverRuns() {
        var call = call(path: "/nope/Nope")
        _ = call.headersEnded(endStream: true, now: 0)
        guard case .ignore = call.requestEnded(answersMustWait: false, now: 0) else {
            Issue.record("a refused call ran")
            return
        }
    }

    @Test func aCallWaitsWhileAnswersMustWaitThenResumes() {
        var call = call(extra: [("grpc-timeout", "1S")])
        _ = call.headersEnded(endStream: false, now: 0)
        _ = data(&call, [0, 0, 0, 0, 1, 9])
        guard case .hold(watchDeadline: true) = call.requestEnded(answersMustWait: true, now: 0) else {
            Issue.record("not held")
            return
        }
        #expect(call.phase == .waiting)
        #expect(call.checkDeadline(now: 10) == .keepWatching)
        #expect(runRequest(call.resume(now: 10)) == [9])
        #expect(call.phase == .running)
        guard case .ignore = call.resume(now: 10) else {
            Issue.record("resumed twice")
            return
        }
    }

    @Test func aCallPastItsDeadlineWhenItWouldStartIsRefusedOutOfTheQueue() {
        var call = call(extra: [("grpc-timeout", "100n")])
        _ = call.headersEnded(endStream: false, now: 0)
        _ = data(&call, [0, 0, 0, 0, 0])
        _ = call.requestEnded(answersMustWait: true, now: 0)
        let error = refusedError(call.resume(now: 101))
        #expect(error?.code == .deadlineExceeded)
        // Out of the queue already: answering does not count it as leaving it again.
        #expect(call.answer() == .init(leftWaitQueue: false, requestWasIncomplete: false))

        var direct = self.call(extra: [("grpc-timeout", "100n")])
        _ = direct.headersEnded(endStream: false, now: 0)
        _ = data(&direct, [0, 0, 0, 0, 0])
        #expect(refusedError(direct.requestEnded(answersMustWait: false, now: 101))?.code == .deadlineExceeded)
    }

    // MARK: Deadlines, answers, close

    @Test func theDeadlineSweepRefusesOnlyLiveCallsPastTheirDeadline() {
        var call = call(extra: [("grpc-timeout", "100n")])
        #expect(call.checkDeadline(now: 1_000) == .forget)  // headers not complete: no deadline yet
        _ = call.headersEnded(endStream: false, now: 0)
        #expect(call.checkDeadline(now: 99) == .keepWatching)
        guard case .refuse(let error) = call.checkDeadline(now: 100) else {
            Issue.record("not refused at its deadline")
            return
        }
        #expect(error.code == .deadlineExceeded)
        _ = data(&call, [0, 0, 0, 0, 0])
        _ = call.requestEnded(answersMustWait: false, now: 50)
        #expect(call.checkDeadline(now: 99) == .keepWatching)
        _ = call.answer()
        #expect(call.checkDeadline(now: 1_000) == .forget)
        var noDeadline = self.call()
        _ = noDeadline.headersEnded(endStream: false, now: 0)
        #expect(noDeadline.checkDeadline(now: .max) == .keepWatching)
    }

    @Test func aCallIsAnsweredOnceAndSaysWhatItLeft() {
        var receiving = call()
        _ = receiving.headersEnded(endStream: false, now: 0)
        _ = data(&receiving, [0, 0, 0, 0, 9, 1])
        #expect(receiving.answer() == .init(leftWaitQueue: false, requestWasIncomplete: true))
        #expect(receiving.answer() == nil)
        #expect(receiving.phase == .responding)
        #expect(receiving.collector.byteCount == 0)

        var waiting = call()
        _ = waiting.headersEnded(endStream: false, now: 0)
        _ = data(&waiting, [0, 0, 0, 0, 0])
        _ = waiting.requestEnded(answersMustWait: true, now: 0)
        #expect(waiting.answer() == .init(leftWaitQueue: true, requestWasIncomplete: false))
        guard case .ignore = waiting.resume(now: 0) else {
            Issue.record("an answered call resumed")
            return
        }
    }

    @Test func aClosedCallIsNeverAnsweredNorRun() {
        var waiting = call()
        _ = waiting.headersEnded(endStream: false, now: 0)
        _ = data(&waiting, [0, 0, 0, 0, 0])
        _ = waiting.requestEnded(answersMustWait: true, now: 0)
        let wasWaiting = waiting.closed()
        #expect(wasWaiting)
        #expect(waiting.phase == .closed)
        #expect(waiting.answer() == nil)
        #expect(waiting.checkDeadline(now: .max) == .forget)
        guard case .ignore = waiting.resume(now: 0) else {
            Issue.record("a closed call resumed")
            return
        }
        var running = call()
        _ = running.headersEnded(endStream: true, now: 0)
        let runningWasWaiting = running.closed()
        #expect(!runningWasWaiting)
        #expect(data(&running, [0]) == .dropped)
    }
}
