import NIOSSL

/// TLS a server serves with, from PEM files. HTTP/2 is agreed by ALPN (`h2`), as gRPC requires.
public struct ServerTLS: Sendable {
    let context: NIOSSLContext

    /// The server's certificate chain and key. With `clientCA`, a client may present a
    /// certificate, which must then verify against it: mutual TLS, how cluster members prove
    /// who they are. Clients without one are served as before (they present tokens).
    public init(certificateFile: String, keyFile: String, clientCA: String?) throws(TLSFileError) {
        context = try TLSFileError.wrapping {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
            configuration.applicationProtocols = ["h2"]
            configuration.minimumTLSVersion = .tlsv12
            if let clientCA {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
                configuration.certificateVerification = .optionalVerification
            }
            return try NIOSSLContext(configuration: configuration)
        }
    }
}

/// TLS a client connects with, from PEM files.
public struct ClientTLS: Sendable {
    let context: NIOSSLContext

    /// The server's certificate must verify against `trustedCA` (the system's roots when nil)
    /// and name the host dialled (an IP address in its subject alternative names when an
    /// address is dialled). With a certificate and key, the client presents them (mutual TLS).
    public init(trustedCA: String?, certificateFile: String? = nil, keyFile: String? = nil) throws(TLSFileError) {
        context = try TLSFileError.wrapping {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.applicationProtocols = ["h2"]
            configuration.minimumTLSVersion = .tlsv12
            if let trustedCA {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustedCA))
            }
            if let certificateFile, let keyFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        }
    }

    /// The name to send as SNI and verify against: nil for an IP address (the certificate
    /// must then hold the address itself).
    static func serverHostname(_ host: String) -> String? {
        let isAddress = host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
        return isAddress ? nil : host
    }
}

/// A certificate, key or CA file that cannot be used; the message says which and why.
public struct TLSFileError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func wrapping<T>(_ body: () throws -> T) throws(TLSFileError) -> T {
        do {
            return try body()
        } catch {
            throw TLSFileError("cannot set up TLS: \(error)")
        }
    }
}
