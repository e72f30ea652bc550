import AeroCacheCore
import Testing

@Suite struct LimitsTests {
    let limits = Limits()

    @Test func keysMustBeOneTo512Bytes() throws {
        #expect(throws: InputError("key must not be empty")) { try limits.validate(key: "") }
        try limits.validate(key: String(repeating: "k", count: 512))
        let error = #expect(throws: InputError.self) { try limits.validate(key: String(repeating: "k", count: 513)) }
        #expect(error?.message.contains("512") == true, "the message names the limit")
        // 171 three-byte characters = 513 UTF-8 bytes: the limit counts bytes, not characters.
        #expect(throws: InputError.self) { try limits.validate(key: String(repeating: "€", count: 171)) }
    }

    @Test func valuesAndMetadataHaveSizeLimits() throws {
        try limits.validate(valueCount: 1 << 20)
        let valueError = #expect(throws: InputError.self) { try limits.validate(valueCount: (1 << 20) + 1) }
        #expect(valueError?.message.contains("1048576") == true)
        try limits.validate(metadata: ["a": String(repeating: "x", count: 1023)])
        let metaError = #expect(throws: InputError.self) { try limits.validate(metadata: ["a": String(repeating: "x", count: 1024)]) }
        #expect(metaError?.message.contains("1024") == true)
    }

    @Test func ttlMustNotBeNegative() throws {
        try limits.validate(ttlMilliseconds: 0)
        #expect(throws: InputError.self) { try limits.validate(ttlMilliseconds: -1) }
    }

    @Test func addressesAndSizesParse() throws {
        #expect(try HostPort(parsing: "127.0.0.1:7400") == HostPort(host: "127.0.0.1", port: 7400))
        #expect(try HostPort(parsing: "[::1]:7401") == HostPort(host: "::1", port: 7401))
        #expect(throws: InputError.self) { try HostPort(parsing: "localhost") }
        #expect(throws: InputError.self) { try HostPort(parsing: "host:70000") }
        #expect(try ByteSize.parse("512MiB") == 512 << 20)
        #expect(try ByteSize.parse("1GiB") == 1 << 30)
        #expect(try ByteSize.parse("1048576") == 1 << 20)
        #expect(throws: InputError.self) { try ByteSize.parse("lots") }
    }

    @Test func xxHash64MatchesTheReferenceVectors() {
        // From the reference implementation (python-xxhash, XXH64, seed 0).
        let vectors: [(String, UInt64)] = [
            ("", 0xef46_db37_51d8_e999), ("a", 0xd24e_c4f1_a98c_6e5b), ("abc", 0x44bc_2cf5_ad77_0999),
            ("Nobody inspects the spammish repetition", 0xfbce_a83c_8a37_8bf1),
            ("0123456789abcdef0123456789abcdef0123", 0xc425_5ba3_d1af_5461),
        ]
        for (text, expected) in vectors { #expect(XXHash64.hash(text) == expected, "\(text)") }
    }
}

@Suite struct DurationTextTests {
    @Test(arguments: [("0.5", Int64(500)), ("30", 30_000), ("500ms", 500), ("30s", 30_000), ("5m", 300_000),
                      ("1h", 3_600_000), ("1.5h", 5_400_000), ("1d", 86_400_000), ("0", 0)])
    func parses(text: String, millis: Int64) throws {
        #expect(try DurationText.milliseconds(text) == millis)
    }

    @Test(arguments: ["", "abc", "-1", "-5s", "10x", "ms", "nan", "inf"])
    func refuses(text: String) {
        #expect(throws: InputError.self) { try DurationText.milliseconds(text) }
    }
}
