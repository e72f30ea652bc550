import AeroCacheCommandLine
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs `aerocachectl` with the contract's exit codes (see ``CommandRunner``).
@main
enum CLIMain {
    static func main() async {
        await CommandRunner.run(AeroCacheCtl.self, arguments: globalOptionsAfterSubcommand(Array(CommandLine.arguments.dropFirst())))
    }

    /// Lets global options come before the subcommand too (`aerocachectl --json get k`):
    /// moves them after it, where the subcommand's option group parses them.
    static func globalOptionsAfterSubcommand(_ arguments: [String]) -> [String] {
        let takesValue: Set<String> = ["--endpoints", "--timeout"]
        let flags: Set<String> = ["--json"]
        var globals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if flags.contains(argument) {
                globals.append(argument)
                index += 1
            } else if takesValue.contains(name) {
                globals.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    globals.append(arguments[index + 1])
                    index += 1
                }
                index += 1
            } else {
                break
            }
        }
        let subcommands = Set(AeroCacheCtl.configuration.subcommands.map { $0._commandName })
        guard index < arguments.count, !globals.isEmpty, subcommands.contains(arguments[index]) else { return arguments }
        return [arguments[index]] + globals + arguments[(index + 1)...]
    }
}
