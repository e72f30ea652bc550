import AeroCacheRPC
@testable import AeroCacheTransport
import Testing

/// Every outcome ``ClientCallAnswer`` decides, from headers and bytes, without a socket.
@Suite struct ClientCallAnswerTests {
    private func answer(_ headers: [(String, String)], _ body: [UInt8] = [], max: Int = 1024) -> ClientCallAnswer {
        var answer = ClientCallAnswer(maxMessageBytes: max)
        for (name, value) in headers {
            Array(name.utf8).withUnsafeBytes { n in Array(value.utf8).withUnsafeBytes { v in answer.receiveHeader(name: n, value: v) } }
        }
        #expect(body.withUnsafeBytes { answer.receiveData($0) })
        return answer
    }

    private func error(_ answer: ClientCallAnswer, reset: UInt32 = 0) -> RPCError? {
        if case .failure(let error) = answer.outcome(resetCode: reset, peer: "node-a") { return error }
        return nil
    }

    @Test func okWithAMessageIsTheMessage() throws {
        let ok = answer([(":status", "200"), ("grpc-status", "0")], MessageFrame.framed([4, 5, 6]))
        #expect(try ok.outcome(resetCode: 0, peer: "node-a").get() == [4, 5, 6])
        let empty = answer([(":status", "200"), ("grpc-status", "0")], MessageFrame.framed([]))
        #expect(try empty.outcome(resetCode: 0, peer: "node-a").get() == [])
    }

    @Test func aGRPCErrorKeepsItsCodeAndDecodedMessage() {
        let failed = answer([(":status", "200"), ("grpc-status", "5"), ("grpc-message", "no%20such%20key")])
        #expect(error(failed) == RPCError(.notFound, "no such key"))
        let garbled = answer([(":status", "200"), ("grpc-status", "x1")])
        #expect(error(garbled)?.code == .unknown)
        let outOfRange = answer([(":status", "200"), ("grpc-status", "99")])
        #expect(error(outOfRange)?.code == .unknown)
    }

    @Test func okWithoutAWellFormedMessageIsInternal() {
        let none = answer([(":status", "200"), ("grpc-status", "0")])
        #expect(error(none)?.message.contains("without a response message") == true)
        let compressed = answer([("grpc-status", "0")], [1, 0, 0, 0, 1, 7])
        #expect(error(compressed)?.message.contains("compressed") == true)
        let short = answer([("grpc-status", "0")], [0, 0, 0, 0, 3, 7])
        #expect(error(short)?.message.contains("1 response bytes for a 3-byte message") == true)
        let long = answer([("grpc-status", "0")], [0, 0, 0, 0, 0, 7])
        #expect(error(long)?.code == .internalError)
    }

    @Test func anHTTPErrorWithoutGRPCStatusMapsToItsCode() {
        #expect(error(answer([(":status", "503")]))?.code == .unavailable)
        #expect(error(answer([(":status", "404")]))?.code == .unimplemented)
        #expect(error(answer([(":status", "401")]))?.code == .unauthenticated)
        #expect(error(answer([(":status", "503")]))?.message == "node-a answered HTTP 503")
    }

    @Test func aStreamThatClosesWithoutStatusSaysHow() {
        #expect(error(answer([(":status", "200")]))?.message.contains("without a grpc-status") == true)
        #expect(error(answer([]), reset: 7)?.code == .unavailable)  // REFUSED_STREAM: safe to retry
        #expect(error(answer([]), reset: 8)?.code == .cancelled)
        #expect(error(answer([]), reset: 2) == RPCError(.internalError, "node-a reset the call (HTTP/2 error 2)"))
    }

    @Test func aResponseOverTheLimitIsRefusedAsItArrives() {
        var answer = ClientCallAnswer(maxMessageBytes: 4)
        #expect([UInt8](repeating: 0, count: 9).withUnsafeBytes { answer.receiveData($0) })
        #expect(![UInt8](repeating: 0, count: 1).withUnsafeBytes { answer.receiveData($0) })
    }

    @Test func digitsParseStrictly() {
        func parse(_ text: String) -> Int? { Array(text.utf8).withUnsafeBytes { Int(parsingDigits: $0) } }
        #expect(parse("200") == 200)
        #expect(parse("") == nil)
        #expect(parse("2x") == nil)
        #expect(parse("-1") == nil)
        #expect(parse("1234567890") == nil)
    }
}
