import NIOCore

/// The state of one unary call on a client connection.
final class ClientStream {
    private let request: [UInt8]
    private var requestOffset = 0
    private var completion: ClientConnectionHandler.Completion?
    private let maxResponseMessageBytes: Int
    var timer: Scheduled<Void>?
    var httpStatus: Int?
    var grpcStatus: Int?
    var grpcMessage: String?
    private var response: [UInt8] = []

    init(request payload: [UInt8], completion: @escaping ClientConnectionHandler.Completion, maxResponseMessageBytes: Int) {
        let prefix = MessageFrame.prefix(length: payload.count)
        var framed = [UInt8]()
        framed.reserveCapacity(MessageFrame.prefixLength + payload.count)
        framed.append(contentsOf: [prefix.0, prefix.1, prefix.2, prefix.3, prefix.4])
        framed.append(contentsOf: payload)
        self.request = framed
        self.completion = completion
        self.maxResponseMessageBytes = maxResponseMessageBytes
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

    /// Appends response DATA; false when the response grows past the limit.
    func appendResponse(_ chunk: UnsafeBufferPointer<UInt8>) -> Bool {
        guard response.count + chunk.count <= maxResponseMessageBytes + MessageFrame.prefixLength else { return false }
        response.append(contentsOf: chunk)
        return true
    }

    /// What the call came to, once its stream closed with `resetCode` (0: closed normally).
    func outcome(resetCode: UInt32, peer: String) -> Result<[UInt8], any Error> {
        if let grpcStatus {
            guard grpcStatus == 0 else {
                return .failure(RPCError(RPCError.Code(rawValue: grpcStatus), grpcMessage ?? ""))
            }
            guard response.count >= MessageFrame.prefixLength else {
                return .failure(RPCError(.internalError, "\(peer) answered OK without a response message"))
            }
            let length = Int(response[1]) << 24 | Int(response[2]) << 16 | Int(response[3]) << 8 | Int(response[4])
            guard response[0] == 0 else {
                return .failure(RPCError(.internalError, "\(peer) sent a compressed response, which was not negotiated"))
            }
            guard response.count == MessageFrame.prefixLength + length else {
                return .failure(RPCError(.internalError, "\(peer) sent \(response.count - 5) response bytes for a \(length)-byte message"))
            }
            response.removeFirst(MessageFrame.prefixLength)
            return .success(response)
        }
        if let httpStatus, httpStatus != 200 {
            return .failure(RPCError(RPCError.Code(httpStatus: httpStatus), "\(peer) answered HTTP \(httpStatus)"))
        }
        switch resetCode {
        case 0:
            return .failure(RPCError(.internalError, "\(peer) ended the call without a grpc-status"))
        case 7:  // REFUSED_STREAM: the request was not processed, safe to retry.
            return .failure(RPCError(.unavailable, "\(peer) refused the call"))
        case 8:
            return .failure(RPCError(.cancelled, "\(peer) cancelled the call"))
        default:
            return .failure(RPCError(.internalError, "\(peer) reset the call (HTTP/2 error \(resetCode))"))
        }
    }

    /// Tells the caller once; later calls do nothing.
    func complete(_ result: Result<[UInt8], any Error>) {
        timer?.cancel()
        timer = nil
        guard let completion else { return }
        self.completion = nil
        completion(result)
    }
}
