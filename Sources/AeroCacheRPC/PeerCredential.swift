/// How a server tells calls from other cluster members apart: the one place that decides
/// ``ServerCallContext/isPeer``.
///
/// Today a shared secret, sent by every member in the ``headerName`` header and compared in
/// constant time; mutual TLS can take its place later without touching the services.
public struct PeerCredential: Sendable {
    /// The header that carries the secret.
    public static let headerName: StaticString = "aerocache-cluster-secret"
    public static var headerNameString: String { headerName.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }

    private let secret: [UInt8]

    /// A credential for `secret`: printable ASCII (a header value), at least 16 characters.
    public init(secret: String) throws(CredentialError) {
        let bytes = Array(secret.utf8)
        guard bytes.count >= 16 else {
            throw CredentialError("the cluster secret must be at least 16 characters (it has \(bytes.count))")
        }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw CredentialError("the cluster secret must be printable ASCII without spaces (e.g. base64)")
        }
        self.secret = bytes
    }

    /// The header value to send.
    public var headerValue: String { String(decoding: secret, as: UTF8.self) }

    /// Whether `presented` is the secret; takes the same time wherever the bytes differ.
    public func admits(_ presented: UnsafeRawBufferPointer) -> Bool {
        var difference: UInt8 = presented.count == secret.count ? 0 : 1
        for index in secret.indices {
            difference |= secret[index] ^ (index < presented.count ? presented[index] : 0)
        }
        return difference == 0
    }
}

/// A cluster secret that cannot be used; the message says why.
public struct CredentialError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
