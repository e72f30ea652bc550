import AeroCacheClient
import AeroCacheProto
import ArgumentParser

/// `aerocachectl health`: the standard `grpc.health.v1` check of one node, over TLS when the
/// options say so (Kubernetes' own gRPC probe speaks only plaintext).
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask the first endpoint whether it serves (grpc.health.v1): exit 0 serving, 1 not serving.",
        discussion: "For readiness probes: a node that has not finished joining answers NOT_SERVING.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let status = try await global.withClient { client in
            try await client.connection.unary(HealthMethods.check, Grpc_Health_V1_HealthCheckRequest(), timeout: client.timeout).status
        }
        let serving = status == .serving
        print(global.json ? "{\"status\":\"\(serving ? "SERVING" : "NOT_SERVING")\"}" : serving ? "SERVING" : "NOT_SERVING")
        if !serving { throw ExitCode(1) }
    }
}
