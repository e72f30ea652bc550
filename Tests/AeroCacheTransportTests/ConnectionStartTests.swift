@testable import AeroCacheTransport
import Testing

/// When a connection's start is whole: the preface, then the first frame with its payload.
@Suite struct ConnectionStartTests {
    private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// A SETTINGS frame header announcing `length` payload bytes.
    private func settingsHeader(length: Int) -> [UInt8] {
        [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0x04, 0, 0, 0, 0, 0]
    }

    private func feed(_ start: inout ConnectionStart, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { start.receive($0) }
    }

    @Test func partOfThePrefaceIsNotAStart() {
        var start = ConnectionStart()
        #expect(!feed(&start, Array(preface.prefix(10))))
        #expect(!feed(&start, Array(preface.dropFirst(10))))
    }

    @Test func anEmptySettingsFrameCompletesIt() {
        var start = ConnectionStart()
        #expect(!feed(&start, preface + settingsHeader(length: 0).prefix(8)))
        #expect(feed(&start, [0]))
    }

    @Test func theFirstFramesPayloadMustArriveWhole() {
        var start = ConnectionStart()
        let frame = settingsHeader(length: 12) + [UInt8](repeating: 1, count: 12)
        #expect(!feed(&start, preface + frame.prefix(20)))
        #expect(feed(&start, Array(frame.dropFirst(20))))
    }

    @Test func oneReadCarryingEverythingCompletesIt() {
        var start = ConnectionStart()
        #expect(feed(&start, preface + settingsHeader(length: 6) + [UInt8](repeating: 0, count: 6) + [0, 0, 4, 8]))
    }

    @Test func bytesOneAtATime() {
        var start = ConnectionStart()
        let all = preface + settingsHeader(length: 3) + [1, 2, 3]
        for (index, byte) in all.enumerated() {
            #expect(feed(&start, [byte]) == (index == all.count - 1), "byte \(index)")
        }
    }
}
