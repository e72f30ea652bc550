import AeroCacheRPC
import NIOCore

/// One unary call on a client connection: its framed request, what it hears of the answer
/// (``ClientCallAnswer``), its deadline, and the completion told once.
final class ClientStream {
    private let request: [UInt8]
    private var requestOffset = 0
    private var completion: ClientConnectionHandler.Completion?
    var answer: ClientCallAnswer
    /// When the call fails with `DEADLINE_EXCEEDED` if no answer came (nil: never).
    var deadline: NIODeadline?
    /// When, if no answer came, the client asks the server with a PING whether it is alive, and
    /// how long it then waits for the PING's answer before the call fails as `peerSilent`.
    var probe: (at: NIODeadline, wait: TimeAmount)?

    init(request payload: [UInt8], completion: @escaping ClientConnectionHandler.Completion, maxResponseMessageBytes: Int) {
        self.request = MessageFrame.framed(payload)
        self.completion = completion
        self.answer = ClientCallAnswer(maxMessageBytes: maxResponseMessageBytes)
    }

    var requestFullySent: Bool { requestOffset == request.count }

    /// Copies the next request bytes into nghttp2's buffer.
    func readRequest(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> Int {
        let count = min(length, request.count - requestOffset)
        request.withUnsafeBufferPointer { bytes in
            buffer.update(from: bytes.baseAddress! + requestOffset, count: count)
        }
        requestOffset += count
        return count
    }

    /// Tells the caller once; later calls do nothing.
    func complete(_ result: Result<[UInt8], any Error>) {
        guard let completion else { return }
        self.completion = nil
        completion(result)
    }
}
