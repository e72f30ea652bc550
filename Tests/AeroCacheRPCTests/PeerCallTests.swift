@testable import AeroCacheRPC
import AeroCacheProto
import Foundation
import SwiftProtobuf
import Testing

/// The pieces that keep strangers and floods out: the credential check and the count of a
/// repeated field before a request is decoded.
@Suite struct PeerCallTests {
    @Test func theCredentialAdmitsOnlyTheSecret() throws {
        let credential = try PeerCredential(secret: "0123456789abcdef-secret")
        func admits(_ text: String) -> Bool { Array(text.utf8).withUnsafeBytes { credential.admits($0) } }
        #expect(admits("0123456789abcdef-secret"))
        for wrong in ["", "0123456789abcdef-secreT", "0123456789abcdef-secre", "0123456789abcdef-secrets", "x"] {
            #expect(!admits(wrong), "\(wrong)")
        }
        #expect(throws: CredentialError.self) { try PeerCredential(secret: "short") }
        #expect(throws: CredentialError.self) { try PeerCredential(secret: "has a space in it, long enough") }
    }

    @Test func repeatedFieldsAreCountedWithoutDecoding() throws {
        var request = Aerocache_V1_BatchGetRequest()
        request.keys = (0..<1_500).map { "key-\($0)" }
        request.consistency = .quorum
        let bytes: [UInt8] = try request.serializedBytes()
        let counted = bytes.withUnsafeBytes { RepeatedFieldCount.count(field: 1, in: $0, limit: 10_000) }
        #expect(counted == 1_500)
        #expect(bytes.withUnsafeBytes { RepeatedFieldCount.count(field: 1, in: $0, limit: 1_000) } == 1_001, "stops past the limit")
        #expect(bytes.withUnsafeBytes { RepeatedFieldCount.count(field: 2, in: $0, limit: 10) } == 1)
        let truncated = Array(bytes.dropLast(3))
        #expect(truncated.withUnsafeBytes { RepeatedFieldCount.count(field: 1, in: $0, limit: 10_000) } == nil)
        let garbage: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(garbage.withUnsafeBytes { RepeatedFieldCount.count(field: 1, in: $0, limit: 10) } == nil)
    }

    @Test func aMethodRefusesTooManyRepeatedFieldsBeforeDecoding() throws {
        let method = ServerMethod(CacheMethods.batchGet, limiting: RepeatedLimit(field: 1, limit: 3, name: "keys")) { _, _ in
            .now(Aerocache_V1_BatchGetResponse())
        }
        var request = Aerocache_V1_BatchGetRequest()
        request.keys = ["a", "b", "c", "d"]
        let error = #expect(throws: RPCError.self) { _ = try method.body(try request.serializedBytes(), ServerCallContext()) }
        #expect(error?.code == .invalidArgument && error?.message.contains("3 keys") == true)
        request.keys.removeLast()
        guard case .now = try method.body(try request.serializedBytes(), ServerCallContext()) else { Issue.record("three keys refused"); return }
    }
}
