import CNghttp2

/// A header field whose bytes it owns. nghttp2 copies them when the field is submitted,
/// unless it is `readInPlace`: then it reads them without copying until the frame is sent,
/// so the field must outlive every frame it is in, as the common ones below (kept for the
/// whole process) and a connection's own (kept by the handler that owns the session) do.
final class HeaderField: @unchecked Sendable {
    let field: nghttp2_nv
    private let storage: UnsafeMutablePointer<UInt8>

    init(_ name: String, _ value: String, readInPlace: Bool = false) {
        let bytes = Array(name.utf8) + Array(value.utf8)
        storage = .allocate(capacity: Swift.max(bytes.count, 1))
        storage.initialize(from: bytes, count: bytes.count)
        let nameCount = name.utf8.count
        field = nghttp2_nv(name: storage, value: storage + nameCount, namelen: nameCount,
                           valuelen: bytes.count - nameCount,
                           flags: readInPlace ? UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)
                               : UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
    }

    deinit { storage.deallocate() }

    static let status200 = HeaderField(":status", "200", readInPlace: true)
    static let status405 = HeaderField(":status", "405", readInPlace: true)
    static let status415 = HeaderField(":status", "415", readInPlace: true)
    static let contentTypeGRPC = HeaderField("content-type", "application/grpc", readInPlace: true)
    static let grpcStatusOK = HeaderField("grpc-status", "0", readInPlace: true)
    static let grpcAcceptEncoding = HeaderField("grpc-accept-encoding", "identity", readInPlace: true)
    static let methodPOST = HeaderField(":method", "POST", readInPlace: true)
    static let schemeHTTP = HeaderField(":scheme", "http", readInPlace: true)
    static let te = HeaderField("te", "trailers", readInPlace: true)
    static let userAgent = HeaderField("user-agent", "aerocache-swift/0.1", readInPlace: true)
    /// `grpc-status` for each code 0…16.
    static let grpcStatus: [HeaderField] = (0...16).map { HeaderField("grpc-status", String($0), readInPlace: true) }

    /// `:status` for an HTTP status a call is refused with (200, 405 or 415).
    static func status(_ code: Int) -> HeaderField {
        switch code {
        case 405: status405
        case 415: status415
        default: status200
        }
    }
}

/// Calls `body` with the nghttp2 form of `fields`, valid (the fields alive) during the call.
func withFields<R>(_ fields: [HeaderField], _ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
    var raw = fields.map(\.field)
    return withExtendedLifetime(fields) {
        raw.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
