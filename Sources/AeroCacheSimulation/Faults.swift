/// A fault the simulation injects, one at a time, while the workload runs.
enum Fault: CaseIterable, Sendable {
    /// kill -9 of one node, restarted (empty: a cache keeps nothing) after a few seconds.
    case crashAndRestart
    /// One node cut off from every other node, both ways.
    case isolate
    /// One node cut off from the others, then killed while cut off (what it took alone dies
    /// with it), restarted empty once the network heals.
    case isolateThenCrash
    /// The nodes split in two groups that cannot reach each other.
    case split
    /// One link cut in one direction only.
    case oneWayCut
    /// A fifth of the messages to and from one node lost.
    case packetLoss
    /// One node's links 0.1–1.5 s slower, both ways.
    case slowLinks
    /// One node's wall clock off by up to the allowed skew.
    case skewWithinLimit
    /// One node's wall clock five minutes ahead or behind (it must refuse to coordinate writes).
    case skewFarOut
    /// A new node joins.
    case join
    /// A node is decommissioned.
    case decommission
    /// A node is killed for good, and removed (`aerocachectl remove`) once the others see it
    /// down: its ranges are copied again from the replicas left.
    case crashAndRemove
}
