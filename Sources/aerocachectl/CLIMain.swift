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
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let problem = subcommandProblem(arguments) {
            CommandRunner.fail("aerocachectl", problem + "; the subcommands are " + subcommandNames.sorted().joined(separator: ", "))
        }
        await CommandRunner.run(AeroCacheCtl.self, arguments: globalOptionsAfterSubcommand(arguments))
    }

    static var subcommandNames: Set<String> { Set(AeroCacheCtl.configuration.subcommands.map { $0._commandName }) }

    /// What is wrong with the subcommand, if anything: missing after global options
    /// (`aerocachectl --json`) or unknown (`aerocachectl --json bogus`).
    static func subcommandProblem(_ arguments: [String]) -> String? {
        let index = firstIndexAfterGlobalOptions(arguments)
        guard index < arguments.count else { return index > 0 ? "a subcommand must follow the global options" : nil }
        let word = arguments[index]
        guard !word.hasPrefix("-"), word != "help", !subcommandNames.contains(word) else { return nil }
        return "unknown subcommand '\(word)'"
    }

    /// Lets global options come before the subcommand too (`aerocachectl --json get k`):
    /// moves them after it, where the subcommand's option group parses them.
    static func globalOptionsAfterSubcommand(_ arguments: [String]) -> [String] {
        let index = firstIndexAfterGlobalOptions(arguments)
        guard index < arguments.count, index > 0, subcommandNames.contains(arguments[index]) else { return arguments }
        return [arguments[index]] + arguments[..<index] + arguments[(index + 1)...]
    }

    /// Where the arguments stop being global options (`--endpoints X`, `--timeout=2s`, `--json`).
    static func firstIndexAfterGlobalOptions(_ arguments: [String]) -> Int {
        let takesValue: Set<String> = ["--endpoints", "--timeout", "--tls-ca", "--token-file"]
        let flags: Set<String> = ["--json"]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if flags.contains(argument) {
                index += 1
            } else if takesValue.contains(name) {
                index += argument.contains("=") ? 1 : 2
            } else {
                break
            }
        }
        return min(index, arguments.count)
    }
}
