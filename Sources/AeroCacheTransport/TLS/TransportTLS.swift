import NIOSSL
import Synchronization

/// TLS a server serves with, from PEM files. HTTP/2 is agreed by ALPN (`h2`), as gRPC requires.
/// ``reload()`` reads the files again: connections made after it use the new certificate.
public final class ServerTLS: Sendable {
    private let files: FileBackedContext

    var context: NIOSSLContext { files.context }

    /// Reads the files again; on an error the TLS in use stays as it was.
    public func reload() throws(TLSFileError) { try files.reload() }

    /// The server's certificate chain and key. With `clientCA`, a client may present a
    /// certificate, which must then verify against it: mutual TLS, how cluster members prove
    /// who they are. Clients without one are served as before (they present tokens).
    public init(certificateFile: String, keyFile: String, clientCA: String?) throws(TLSFileError) {
        files = try FileBackedContext { () throws(TLSFileError) in
            try Self.context(certificateFile: certificateFile, keyFile: keyFile, clientCA: clientCA)
        }
    }

    private static func context(certificateFile: String, keyFile: String, clientCA: String?) throws(TLSFileError) -> NIOSSLContext {
        try TLSFileError.wrapping {
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

/// TLS a client connects with, from PEM files. ``reload()`` reads the files again: connections
/// made after it (reconnections included) use them.
public final class ClientTLS: Sendable {
    private let files: FileBackedContext

    var context: NIOSSLContext { files.context }

    /// Reads the files again; on an error the TLS in use stays as it was.
    public func reload() throws(TLSFileError) { try files.reload() }

    /// The server's certificate must verify against `trustedCA` (the system's roots when nil)
    /// and name the host dialled (an IP address in its subject alternative names when an
    /// address is dialled). With a certificate and key, the client presents them (mutual TLS).
    public init(trustedCA: String?, certificateFile: String? = nil, keyFile: String? = nil) throws(TLSFileError) {
        files = try FileBackedContext { () throws(TLSFileError) in
            try Self.context(trustedCA: trustedCA, certificateFile: certificateFile, keyFile: keyFile)
        }
    }

    private static func context(trustedCA: String?, certificateFile: String?, keyFile: String?) throws(TLSFileError) -> NIOSSLContext {
        try TLSFileError.wrapping {
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

/// A TLS context made from files, and made again from them on ``reload()``.
private final class FileBackedContext: Sendable {
    private let current: Mutex<NIOSSLContext>
    private let load: @Sendable () throws(TLSFileError) -> NIOSSLContext

    init(load: @escaping @Sendable () throws(TLSFileError) -> NIOSSLContext) throws(TLSFileError) {
        self.load = load
        current = Mutex(try load())
    }

    var context: NIOSSLContext { current.withLock { $0 } }

    func reload() throws(TLSFileError) {
        let fresh = try load()
        current.withLock { $0 = fresh }
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
