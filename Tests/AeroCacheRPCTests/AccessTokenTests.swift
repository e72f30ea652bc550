@testable import AeroCacheRPC
import Testing

/// Tokens with roles: the file's format, the constant-time match, and who may call what.
@Suite struct AccessTokenTests {
    let file = """
        # TOKEN ROLE
        reader-0123456789abcdef read

        writer-0123456789abcdef\twrite
        admin--0123456789abcdef admin
        """

    func role(_ tokens: AccessTokens, authorization: String) -> Role? {
        Array(authorization.utf8).withUnsafeBytes { tokens.role(ofAuthorization: $0) }
    }

    @Test func eachTokenHasItsRoleAndNothingElseMatches() throws {
        let tokens = try AccessTokens(parsing: file)
        #expect(tokens.count == 3)
        #expect(role(tokens, authorization: "Bearer reader-0123456789abcdef") == .read)
        #expect(role(tokens, authorization: "bearer writer-0123456789abcdef") == .write)
        #expect(role(tokens, authorization: "Bearer admin--0123456789abcdef") == .admin)
        for wrong in ["reader-0123456789abcdef", "Bearer reader-0123456789abcde", "Bearer reader-0123456789abcdefg",
                      "Bearer Reader-0123456789abcdef", "Bearer ", "Bearer", "", "Basic reader-0123456789abcdef",
                      "Bearer  reader-0123456789abcdef"] {
            #expect(role(tokens, authorization: wrong) == nil, "\(wrong)")
        }
    }

    @Test func aBadFileIsRefusedNamingTheLine() {
        let cases: [(String, String)] = [
            ("", "no token"),
            ("# only a comment\n", "no token"),
            ("reader-0123456789abcdef\n", "line 1"),
            ("reader-0123456789abcdef read extra\n", "line 1"),
            ("ok-token-0123456789abc read\nshort write\n", "line 2: a token must be at least 16"),
            ("reader-0123456789abcdef reader\n", "not a role"),
            ("reader-0123456789abcdef read\nreader-0123456789abcdef admin\n", "twice"),
            ("reader-0123456789abcdéf read\n", "printable ASCII"),
        ]
        // A line written ROLE TOKEN: the error must not quote the token.
        #expect {
            try AccessTokens(parsing: "admin secret-token-0123456789\n")
        } throws: { error in
            let message = (error as? CredentialError)?.message ?? ""
            return message.contains("line 1") && !message.contains("secret-token")
        }
        for (text, message) in cases {
            #expect {
                try AccessTokens(parsing: text)
            } throws: { error in
                (error as? CredentialError)?.message.contains(message) == true
            }
        }
    }

    @Test func methodsAnswerTheRightStatus() {
        func refusal(_ permission: Permission, _ token: TokenCheck, isPeer: Bool = false) -> RPCError.Code? {
            permission.refusal(path: "/m", ServerCallContext(isPeer: isPeer, token: token))?.code
        }
        // Without tokens configured, everyone may call (except peer methods).
        #expect(refusal(.role(.admin), .notRequired) == nil)
        #expect(refusal(.membersOnly, .notRequired) == .unauthenticated)
        // With them: missing or invalid is UNAUTHENTICATED, too low a role PERMISSION_DENIED.
        #expect(refusal(.role(.read), .missing) == .unauthenticated)
        #expect(refusal(.role(.read), .invalid) == .unauthenticated)
        #expect(refusal(.role(.write), .valid(.read)) == .permissionDenied)
        #expect(refusal(.role(.admin), .valid(.write)) == .permissionDenied)
        #expect(refusal(.role(.write), .valid(.write)) == nil)
        #expect(refusal(.role(.read), .valid(.admin)) == nil)
        // An admin token is no cluster member; a member needs no token to read or write (it
        // forwards calls checked where they arrived), but admin commands need an admin token.
        #expect(refusal(.membersOnly, .valid(.admin)) == .unauthenticated)
        #expect(refusal(.role(.write), .missing, isPeer: true) == nil)
        #expect(refusal(.role(.admin), .missing, isPeer: true) == .unauthenticated)
        #expect(refusal(.role(.admin), .valid(.write), isPeer: true) == .permissionDenied)
        #expect(refusal(.role(.admin), .notRequired, isPeer: true) == nil)
        #expect(refusal(.anyone, .invalid) == nil)
    }
}
