/// What a token lets its holder do. Each role includes the ones below it: `write` can read,
/// `admin` can do everything (decommission, remove, repair).
public enum Role: Int, Sendable, Comparable, CustomStringConvertible {
    case read, write, admin

    public init?(name: Substring) {
        switch name {
        case "read": self = .read
        case "write": self = .write
        case "admin": self = .admin
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .read: "read"
        case .write: "write"
        case .admin: "admin"
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The tokens a node accepts (`--auth-token-file`), each with its role.
///
/// The file has one `TOKEN ROLE` per line; blank lines and lines starting with `#` are
/// skipped. A presented token is compared with every token, each in constant time, so how
/// long a check takes says nothing about how close a guess came.
public struct AccessTokens: Sendable {
    private let entries: [(token: [UInt8], role: Role)]

    /// The shortest token accepted: a guessable token protects nothing.
    public static let minimumLength = 16

    /// Parses a token file's text; the error names the first bad line.
    public init(parsing text: String) throws(CredentialError) {
        var entries: [(token: [UInt8], role: Role)] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            let lineNumber = index + 1
            guard fields.count == 2 else {
                throw CredentialError("line \(lineNumber): expected `TOKEN ROLE`, found \(fields.count) field(s)")
            }
            guard let role = Role(name: fields[1]) else {
                // The field is not quoted: a line written `ROLE TOKEN` would put a token in the log.
                throw CredentialError("line \(lineNumber): the second field is not a role; roles are read, write and admin (`TOKEN ROLE`)")
            }
            let token = Array(first.utf8)
            guard token.count >= Self.minimumLength else {
                throw CredentialError("line \(lineNumber): a token must be at least \(Self.minimumLength) characters (it has \(token.count))")
            }
            guard token.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw CredentialError("line \(lineNumber): a token must be printable ASCII without spaces")
            }
            guard !entries.contains(where: { $0.token == token }) else {
                throw CredentialError("line \(lineNumber): the token appears twice")
            }
            entries.append((token, role))
        }
        guard !entries.isEmpty else { throw CredentialError("the token file holds no token") }
        self.entries = entries
    }

    public var count: Int { entries.count }

    /// The role of `presented`, or nil when it is no token of this set. Every token is
    /// compared, each over its whole length.
    public func role(of presented: UnsafeRawBufferPointer) -> Role? {
        var found: Role?
        for entry in entries {
            var difference: UInt8 = presented.count == entry.token.count ? 0 : 1
            for index in entry.token.indices {
                difference |= entry.token[index] ^ (index < presented.count ? presented[index] : 0)
            }
            if difference == 0 { found = entry.role }
        }
        return found
    }

    /// The role of an `authorization` header's value (`Bearer TOKEN`), or nil.
    public func role(ofAuthorization value: UnsafeRawBufferPointer) -> Role? {
        let scheme = "bearer "
        guard value.count > scheme.utf8.count else { return nil }
        for (offset, byte) in scheme.utf8.enumerated() where value[offset] | 0x20 != byte {
            return nil
        }
        return role(of: UnsafeRawBufferPointer(rebasing: value[scheme.utf8.count...]))
    }
}
