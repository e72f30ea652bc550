import CNghttp2

/// A header field whose bytes live for the whole process, so nghttp2 may use them without copying.
struct StaticHeader: @unchecked Sendable {
    let field: nghttp2_nv

    init(_ name: String, _ value: String) {
        field = nghttp2_nv(
            name: StaticHeader.permanentBytes(name), value: StaticHeader.permanentBytes(value),
            namelen: name.utf8.count, valuelen: value.utf8.count,
            flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
    }

    private static func permanentBytes(_ string: String) -> UnsafeMutablePointer<UInt8> {
        let bytes = Array(string.utf8)
        let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        pointer.initialize(from: bytes, count: bytes.count)
        return pointer
    }

    static let status200 = StaticHeader(":status", "200")
    static let status405 = StaticHeader(":status", "405")
    static let status415 = StaticHeader(":status", "415")
    static let contentTypeGRPC = StaticHeader("content-type", "application/grpc")
    static let grpcStatusOK = StaticHeader("grpc-status", "0")
    static let grpcAcceptEncoding = StaticHeader("grpc-accept-encoding", "identity")
    static let methodPOST = StaticHeader(":method", "POST")
    static let schemeHTTP = StaticHeader(":scheme", "http")
    static let te = StaticHeader("te", "trailers")
    static let userAgent = StaticHeader("user-agent", "aerocache-swift/0.1")
    /// `:status` for an HTTP status a call is refused with (200, 405 or 415).
    static func status(_ code: Int) -> StaticHeader {
        switch code {
        case 405: status405
        case 415: status415
        default: status200
        }
    }
    /// `grpc-status` for each code 0…16.
    static let grpcStatus: [StaticHeader] = (0...16).map { StaticHeader("grpc-status", String($0)) }
}

/// Header fields built at run time; nghttp2 copies them when they are submitted.
struct DynamicHeaders {
    private var names: [[UInt8]] = []
    private var values: [[UInt8]] = []

    mutating func append(_ name: String, _ value: String) {
        names.append(Array(name.utf8))
        values.append(Array(value.utf8))
    }

    /// Calls `body` with `prefix` followed by these fields, valid only during the call.
    mutating func withFields<R>(after prefix: [nghttp2_nv], _ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
        var fields = prefix
        var pointers: [UnsafeMutablePointer<UInt8>] = []
        defer { pointers.forEach { $0.deallocate() } }
        for (name, value) in zip(names, values) {
            let n = UnsafeMutablePointer<UInt8>.allocate(capacity: max(name.count, 1))
            n.initialize(from: name, count: name.count)
            let v = UnsafeMutablePointer<UInt8>.allocate(capacity: max(value.count, 1))
            v.initialize(from: value, count: value.count)
            pointers.append(n)
            pointers.append(v)
            fields.append(nghttp2_nv(name: n, value: v, namelen: name.count, valuelen: value.count,
                                     flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
        }
        return fields.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
