import AeroCacheRPC

/// What a client hears of one call's answer (headers, message bytes, trailers), and what the
/// call comes to when its stream closes: a value the connection handler feeds and asks.
struct ClientCallAnswer {
    private(set) var httpStatus: Int?
    private(set) var grpcStatus: Int?
    private(set) var grpcMessage: String?
    /// The response as it arrived: the 5-byte gRPC prefix, then the message.
    private var framed: [UInt8] = []
    let maxMessageBytes: Int

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// One header or trailer of the answer.
    mutating func receiveHeader(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if name.equals(":status") {
            httpStatus = Int(parsingDigits: value)
        } else if name.equals("grpc-status") {
            grpcStatus = Int(parsingDigits: value) ?? RPCError.Code.unknown.rawValue
        } else if name.equals("grpc-message") {
            grpcMessage = PercentEncoding.decode(value)
        }
    }

    /// Appends response DATA; false when the response grows past the limit.
    mutating func receiveData(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard framed.count + chunk.count <= maxMessageBytes + MessageFrame.prefixLength else { return false }
        framed.append(contentsOf: chunk)
        return true
    }

    /// What the call came to, once its stream closed with `resetCode` (0: closed normally).
    /// `peer` names the server in messages.
    consuming func outcome(resetCode: UInt32, peer: String) -> Result<[UInt8], RPCError> {
        if let grpcStatus {
            guard grpcStatus == 0 else {
                return .failure(RPCError(RPCError.Code(rawValue: grpcStatus), grpcMessage ?? ""))
            }
            guard framed.count >= MessageFrame.prefixLength else {
                return .failure(RPCError(.internalError, "\(peer) answered OK without a response message"))
            }
            let length = Int(framed[1]) << 24 | Int(framed[2]) << 16 | Int(framed[3]) << 8 | Int(framed[4])
            guard framed[0] == 0 else {
                return .failure(RPCError(.internalError, "\(peer) sent a compressed response, which was not negotiated"))
            }
            guard framed.count == MessageFrame.prefixLength + length else {
                return .failure(RPCError(.internalError, "\(peer) sent \(framed.count - MessageFrame.prefixLength) response bytes for a \(length)-byte message"))
            }
            framed.removeFirst(MessageFrame.prefixLength)
            return .success(framed)
        }
        if let httpStatus, httpStatus != 200 {
            return .failure(RPCError(RPCError.Code(httpStatus: httpStatus), "\(peer) answered HTTP \(httpStatus)"))
        }
        switch resetCode {
        case 0:
            return .failure(RPCError(.internalError, "\(peer) ended the call without a grpc-status"))
        case 7:  // REFUSED_STREAM: the request was not processed, safe to retry.
            return .failure(RPCError(.unavailable, "\(peer) refused the call", neverSent: true))
        case 8:  // CANCEL
            return .failure(RPCError(.cancelled, "\(peer) cancelled the call"))
        default:
            return .failure(RPCError(.internalError, "\(peer) reset the call (HTTP/2 error \(resetCode))"))
        }
    }
}

extension Int {
    /// Parses ASCII decimal digits; nil when empty, not all digits, or too long.
    init?(parsingDigits bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        self = value
    }
}
