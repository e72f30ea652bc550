// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // A file sees only the members of the modules it imports (scripts/pure-share.sh counts imports).
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "AeroCache",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "aerocache-node", targets: ["aerocache-node"]),
        .executable(name: "aerocachectl", targets: ["aerocachectl"]),
        .executable(name: "aerocache-bench", targets: ["aerocache-bench"]),
        .executable(name: "aerocache-demo", targets: ["aerocache-demo"]),
        .executable(name: "aerocache-check", targets: ["aerocache-check"]),
        .executable(name: "aerocache-sim", targets: ["aerocache-sim"]),
        .library(name: "AeroCacheClient", targets: ["AeroCacheClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Pure logic, no sockets: limits, the in-memory store.
        .target(
            name: "AeroCacheCore",
            swiftSettings: strict
        ),
        // The vocabulary of a call, no sockets: statuses, the method shape, descriptors, the
        // peer credential (what the services need without the transport).
        .target(
            name: "AeroCacheRPC",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict
        ),
        // Generated protobuf messages (scripts/generate-proto.sh) plus the method descriptors.
        .target(
            name: "AeroCacheProto",
            dependencies: ["AeroCacheCore", "AeroCacheRPC", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["generated-from.sha256"],
            swiftSettings: strict
        ),
        // Debian's libnghttp2-dev.
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // The gRPC wire protocol on libnghttp2, driven by swift-nio.
        .target(
            name: "AeroCacheTransport",
            dependencies: [
                "CNghttp2",
                "AeroCacheCore",
                "AeroCacheRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // One cluster node: the Cache and Health services over the transport.
        .target(
            name: "AeroCacheNode",
            dependencies: [
                "AeroCacheCore", "AeroCacheProto", "AeroCacheRPC", "AeroCacheTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // The Swift client library.
        .target(
            name: "AeroCacheClient",
            dependencies: [
                "AeroCacheCore", "AeroCacheProto", "AeroCacheRPC", "AeroCacheTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // In-process nodes on loopback for tests.
        .target(
            name: "AeroCacheTestKit",
            dependencies: [
                "AeroCacheNode", "AeroCacheClient", "AeroCacheCore", "AeroCacheRPC", "AeroCacheTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Exit statuses and one-line errors shared by the executables.
        .target(
            name: "AeroCacheCommandLine",
            dependencies: [
                "AeroCacheCore",
                "AeroCacheRPC",
                "AeroCacheTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "aerocache-node",
            dependencies: [
                "AeroCacheCommandLine",
                "AeroCacheNode", "AeroCacheRPC", "AeroCacheTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict,
            // jemalloc (Debian's libjemalloc-dev), as Redis uses: the node allocates on one
            // thread and frees on another, which glibc's malloc handles poorly (measured:
            // quorum Set +17–30% through a 3-node cluster, one node +2%; see the README).
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "aerocachectl",
            dependencies: [
                "AeroCacheCommandLine",
                "AeroCacheClient", "AeroCacheCore", "AeroCacheProto", "AeroCacheRPC", "AeroCacheTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "aerocache-bench",
            dependencies: [
                "AeroCacheClient", "AeroCacheCommandLine",
                "AeroCacheCore", "AeroCacheProto", "AeroCacheRPC", "AeroCacheTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The product's five use cases against a live cluster, through the client (the README's tour).
        .executableTarget(
            name: "aerocache-demo",
            dependencies: [
                "AeroCacheClient", "AeroCacheCommandLine", "AeroCacheCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // What a workload did and what reading it back says (the checker's and the simulation's judge).
        .target(
            name: "AeroCacheChecking",
            dependencies: ["AeroCacheRPC"],
            swiftSettings: strict
        ),
        // Several real nodes in one process on a virtual clock and a fault-injecting network, seeded.
        .target(
            name: "AeroCacheSimulation",
            dependencies: [
                "AeroCacheChecking", "AeroCacheCore", "AeroCacheNode", "AeroCacheProto", "AeroCacheRPC",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Runs the simulation for a range of seeds, or replays one.
        .executableTarget(
            name: "aerocache-sim",
            dependencies: [
                "AeroCacheChecking", "AeroCacheSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Records a workload's outcomes, then verifies nothing acknowledged was lost (the fault tests' judge).
        .executableTarget(
            name: "aerocache-check",
            dependencies: [
                "AeroCacheChecking", "AeroCacheClient", "AeroCacheCommandLine", "AeroCacheCore", "AeroCacheRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Nanoseconds per get and set on the storage engine alone (scripts/bench-memory.sh runs it).
        .executableTarget(
            name: "aerocache-engine-bench",
            dependencies: ["AeroCacheCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AeroCacheCoreTests",
            dependencies: ["AeroCacheCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AeroCacheSimulationTests",
            dependencies: ["AeroCacheChecking", "AeroCacheProto", "AeroCacheSimulation"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AeroCacheRPCTests",
            dependencies: ["AeroCacheRPC", "AeroCacheProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AeroCacheNodeTests",
            dependencies: ["AeroCacheNode", "AeroCacheClient", "AeroCacheCore", "AeroCacheProto", "AeroCacheRPC",
                           "AeroCacheTestKit", "AeroCacheTransport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AeroCacheTransportTests",
            dependencies: [
                "AeroCacheTransport", "AeroCacheProto", "AeroCacheRPC", "AeroCacheTestKit", "AeroCacheClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
