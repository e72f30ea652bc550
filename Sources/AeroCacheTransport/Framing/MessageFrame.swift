import AeroCacheRPC

/// The gRPC length-prefixed message: 1 flag byte (1 = compressed) and a 4-byte big-endian length.
public enum MessageFrame {
    /// Bytes before each message.
    public static let prefixLength = 5

    /// The prefix for an uncompressed message of `length` bytes.
    @inlinable
    public static func prefix(length: Int) -> (UInt8, UInt8, UInt8, UInt8, UInt8) {
        let n = UInt32(truncatingIfNeeded: length)
        return (0, UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16),
                UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n))
    }

    /// `payload` as one message on the wire: the prefix, then the bytes.
    public static func framed(_ payload: [UInt8]) -> [UInt8] {
        let prefix = prefix(length: payload.count)
        var framed = [UInt8]()
        framed.reserveCapacity(prefixLength + payload.count)
        framed.append(contentsOf: [prefix.0, prefix.1, prefix.2, prefix.3, prefix.4])
        framed.append(contentsOf: payload)
        return framed
    }
}

/// Collects the DATA bytes of a unary call and yields its one message.
///
/// It reads the prefix as soon as 5 bytes have arrived and refuses a message longer than
/// `maxMessageBytes` before buffering it, so an oversized request costs no memory.
public struct UnaryMessageCollector: Sendable {
    public let maxMessageBytes: Int
    /// Whether compressed messages may arrive (an encoding was negotiated). We support none.
    public let compressionAllowed: Bool
    private var bytes: [UInt8] = []
    private var declaredLength: Int?

    public init(maxMessageBytes: Int, compressionAllowed: Bool = false) {
        self.maxMessageBytes = maxMessageBytes
        self.compressionAllowed = compressionAllowed
    }

    /// Appends a chunk of DATA; throws as soon as the message is known to break a rule.
    public mutating func append(_ chunk: UnsafeRawBufferPointer) throws(RPCError) {
        if declaredLength == nil && bytes.count + chunk.count >= MessageFrame.prefixLength {
            bytes.append(contentsOf: chunk)
            // No room is reserved for the declared length: the bytes grow as they arrive, so
            // a prefix alone (1,024 streams of them) costs nothing.
            try readPrefix()
            return
        }
        if let declaredLength, bytes.count + chunk.count > MessageFrame.prefixLength + declaredLength {
            throw RPCError(.unimplemented, "a unary call carries exactly one request message; got more")
        }
        bytes.append(contentsOf: chunk)
    }

    private mutating func readPrefix() throws(RPCError) {
        let flag = bytes[0]
        let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        if flag & 1 != 0 && !compressionAllowed {
            throw RPCError(.internalError, "compressed message received but no grpc-encoding was negotiated")
        }
        if flag & ~1 != 0 {
            throw RPCError(.internalError, "invalid message flag byte \(flag)")
        }
        if length > maxMessageBytes {
            throw RPCError(
                .resourceExhausted,
                "request message is \(length) bytes, over the limit of \(maxMessageBytes) bytes")
        }
        declaredLength = length
        if bytes.count > MessageFrame.prefixLength + length {
            throw RPCError(.unimplemented, "a unary call carries exactly one request message; got more")
        }
    }

    /// Bytes collected so far (prefix included).
    public var byteCount: Int { bytes.count }

    /// The message's length as its prefix declares it, once the prefix has arrived.
    public var declaredMessageBytes: Int? { declaredLength }

    /// The message once the stream has ended; throws when it is missing or cut short.
    public mutating func finish() throws(RPCError) -> [UInt8] {
        guard let declaredLength else {
            if bytes.isEmpty { throw RPCError(.unimplemented, "unary call ended without a request message") }
            throw RPCError(.internalError, "request ended inside a message prefix")
        }
        guard bytes.count == MessageFrame.prefixLength + declaredLength else {
            throw RPCError(.internalError, "request ended after \(bytes.count - MessageFrame.prefixLength) of \(declaredLength) message bytes")
        }
        // The bytes move out: the collector keeps nothing of a request it handed over.
        var message: [UInt8] = []
        swap(&message, &bytes)
        message.removeFirst(MessageFrame.prefixLength)
        return message
    }
}
