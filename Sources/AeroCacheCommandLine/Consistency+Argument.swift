import AeroCacheCore
import ArgumentParser

/// `--consistency one|quorum|all`, in every executable that takes it.
extension Consistency: ExpressibleByArgument {}
