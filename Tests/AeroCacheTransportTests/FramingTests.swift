import AeroCacheRPC
@testable import AeroCacheTransport
import Testing

@Suite struct FramingTests {
    private func collect(_ chunks: [[UInt8]], max: Int = 1024) throws(RPCError) -> [UInt8] {
        var collector = UnaryMessageCollector(maxMessageBytes: max)
        for chunk in chunks {
            let result = chunk.withUnsafeBytes { bytes in Result { () throws(RPCError) in try collector.append(bytes) } }
            try result.get()
        }
        return try collector.finish()
    }

    @Test func aMessageSplitAnywhereIsReassembled() throws {
        let message: [UInt8] = [0, 0, 0, 0, 3, 7, 8, 9]
        for cut in 0...message.count {
            #expect(try collect([Array(message[..<cut]), Array(message[cut...])]) == [7, 8, 9])
        }
        #expect(try collect(message.map { [$0] }) == [7, 8, 9])
    }

    @Test func oversizedMessagesAreRefusedFromTheirPrefix() {
        let error = #expect(throws: RPCError.self) { try collect([[0, 0, 0, 4, 1]], max: 1024) }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("1024") == true)
    }

    @Test func compressedWithoutEncodingIsInternal() {
        let error = #expect(throws: RPCError.self) { try collect([[1, 0, 0, 0, 1, 42]]) }
        #expect(error?.code == .internalError)
    }

    @Test func missingTruncatedOrExtraMessagesAreErrors() {
        #expect(throws: RPCError.self) { try collect([]) }
        #expect(throws: RPCError.self) { try collect([[0, 0, 0]]) }
        #expect(throws: RPCError.self) { try collect([[0, 0, 0, 0, 3, 1]]) }
        #expect(throws: RPCError.self) { try collect([[0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]]) }
    }

    @Test func timeoutsParseAndFormat() {
        #expect(GRPCTimeout.parseNanoseconds(Array("100m".utf8)) == 100_000_000)
        #expect(GRPCTimeout.parseNanoseconds(Array("2S".utf8)) == 2_000_000_000)
        #expect(GRPCTimeout.parseNanoseconds(Array("1H".utf8)) == 3_600_000_000_000)
        #expect(GRPCTimeout.parseNanoseconds(Array("5".utf8)) == nil)
        #expect(GRPCTimeout.parseNanoseconds(Array("123456789m".utf8)) == nil, "at most 8 digits")
        #expect(GRPCTimeout.parseNanoseconds(Array("1x".utf8)) == nil)
        #expect(GRPCTimeout.format(nanoseconds: 1_500_000) == "1500000n")
        #expect(GRPCTimeout.format(nanoseconds: 5_000_000_000) == "5000000u")
        let long = GRPCTimeout.format(nanoseconds: 3_600_000_000_000)
        #expect(GRPCTimeout.parseNanoseconds(Array(long.utf8)).map { $0 >= 3_600_000_000_000 } == true)
    }

    @Test func grpcMessagesArePercentEncoded() {
        #expect(PercentEncoding.encode("plain text") == "plain text")
        #expect(PercentEncoding.encode("100% ünïcode\n") == "100%25 %C3%BCn%C3%AFcode%0A")
        #expect(PercentEncoding.decode(Array("100%25 %C3%BCn%C3%AFcode%0A".utf8)) == "100% ünïcode\n")
        #expect(PercentEncoding.decode(Array("bad %zz escape %4".utf8)) == "bad %zz escape %4")
    }

    @Test func statusCodesRoundTrip() {
        for raw in 0...16 { #expect(RPCError.Code(rawValue: raw).rawValue == raw) }
        #expect(RPCError.Code(rawValue: 99) == .unknown)
        #expect(RPCError.Code.invalidArgument.description == "INVALID_ARGUMENT")
        #expect(RPCError.Code(httpStatus: 503) == .unavailable)
    }
}
