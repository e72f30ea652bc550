import CNghttp2

/// A header field whose bytes it owns. nghttp2 reads them in place, without copying, until
/// the frame is sent, so a field must outlive every frame it is in: the common ones below are
/// kept for the whole process, a connection's own by the handler that owns the session. A
/// value made for one frame goes through ``withCopiedField(_:_:_:)`` instead.
final class HeaderField: @unchecked Sendable {
    let field: nghttp2_nv
    private let storage: UnsafeMutablePointer<UInt8>

    init(_ name: String, _ value: String) {
        let bytes = Array(name.utf8) + Array(value.utf8)
        storage = .allocate(capacity: Swift.max(bytes.count, 1))
        storage.initialize(from: bytes, count: bytes.count)
        let nameCount = name.utf8.count
        field = nghttp2_nv(name: storage, value: storage + nameCount, namelen: nameCount,
                           valuelen: bytes.count - nameCount,
                           flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
    }

    deinit { storage.deallocate() }

    static let status200 = HeaderField(":status", "200")
    static let status405 = HeaderField(":status", "405")
    static let status415 = HeaderField(":status", "415")
    static let contentTypeGRPC = HeaderField("content-type", "application/grpc")
    static let grpcStatusOK = HeaderField("grpc-status", "0")
    static let grpcAcceptEncoding = HeaderField("grpc-accept-encoding", "identity")
    static let methodPOST = HeaderField(":method", "POST")
    static let schemeHTTP = HeaderField(":scheme", "http")
    static let te = HeaderField("te", "trailers")
    static let userAgent = HeaderField("user-agent", "aerocache-swift/0.1")
    /// `grpc-status` for each code 0…16.
    static let grpcStatus: [HeaderField] = (0...16).map { HeaderField("grpc-status", String($0)) }

    /// `:status` for an HTTP status a call is refused with (200, 405 or 415).
    static func status(_ code: Int) -> HeaderField {
        switch code {
        case 405: status405
        case 415: status415
        default: status200
        }
    }
}

/// Calls `body` with a field that nghttp2 copies when it is submitted during the call (a
/// `grpc-timeout` or `grpc-message` made for one frame), allocating nothing for it.
func withCopiedField<R>(_ name: StaticString, _ value: String, _ body: (nghttp2_nv) -> R) -> R {
    var value = value
    return value.withUTF8 { bytes in
        body(nghttp2_nv(name: UnsafeMutablePointer(mutating: name.utf8Start),
                        value: UnsafeMutablePointer(mutating: bytes.baseAddress ?? name.utf8Start),
                        namelen: name.utf8CodeUnitCount, valuelen: bytes.count,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
    }
}
