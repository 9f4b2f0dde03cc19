// swift-tools-version:6.1

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    // https://github.com/apple/swift-evolution/blob/main/proposals/0335-existential-any.md
    .enableUpcomingFeature("ExistentialAny"),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0444-member-import-visibility.md
    .enableUpcomingFeature("MemberImportVisibility"),
    // https://github.com/apple/swift-evolution/blob/main/proposals/0409-access-level-on-imports.md
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "quarry",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quarry", targets: ["QuarryCLI"]),
        .library(name: "QuarryCore", targets: ["QuarryCore"]),
        .library(name: "QuarrySearch", targets: ["QuarrySearch"]),
        .library(name: "QuarryElastic", targets: ["QuarryElastic"]),
        .library(name: "QuarryElasticsearchAPI", targets: ["QuarryElasticsearchAPI"]),
        .library(name: "QuarryServer", targets: ["QuarryServer"]),
        .library(name: "QuarryLiquid", targets: ["QuarryLiquid"]),
        .library(name: "QuarryDNS", targets: ["QuarryDNS"]),
        .library(name: "QuarryCapture", targets: ["QuarryCapture"]),
        .library(name: "QuarryPacketbeat", targets: ["QuarryPacketbeat"]),
        .library(name: "QuarryMail", targets: ["QuarryMail"]),
        .library(name: "QuarryStories", targets: ["QuarryStories"]),
        .library(name: "QuarryStoriesSQLite", targets: ["QuarryStoriesSQLite"]),
        .library(name: "QuarryAgents", targets: ["QuarryAgents"]),
        .library(name: "QuarryCommands", targets: ["QuarryCommands"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/pointfreeco/swift-clocks.git", from: "1.1.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // zstd, which compresses stored `_source`: the system's library (see the header for why it is declared here).
        .target(
            name: "CZstd",
            linkerSettings: [
                .linkedLibrary(":libzstd.so.1", .when(platforms: [.linux])),
                .linkedLibrary("zstd", .when(platforms: [.macOS])),
            ]
        ),
        .target(
            name: "QuarryCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryDNS",
            dependencies: ["QuarryCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryCapture",
            dependencies: ["QuarryCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryPacketbeat",
            dependencies: [
                "QuarryCapture", "QuarryCore", "QuarryDNS", .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Resources/README.md"],
            resources: [.copy("Resources/public_suffix_list.dat")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryLiquid",
            dependencies: [
                "QuarryCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryMail",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryStories",
            dependencies: [
                "QuarryCore",
                "QuarryLiquid",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryStoriesSQLite",
            dependencies: [
                "QuarryCore",
                "QuarryStories",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryAgents",
            dependencies: [
                "QuarryCore",
                "QuarryDNS",
                "QuarryElastic",
                "QuarryLiquid",
                "QuarryMail",
                "QuarryStories",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarrySamples",
            dependencies: ["QuarryCapture", "QuarryCore", "QuarryDNS"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarrySearch",
            dependencies: [
                "CZstd",
                "QuarryCore",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryElastic",
            dependencies: [
                "QuarryCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryElasticsearchAPI",
            dependencies: [
                "QuarryCore",
                "QuarrySearch",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryServer",
            dependencies: [
                "QuarryAgents",
                "QuarryCore",
                "QuarryElasticsearchAPI",
                "QuarrySearch",
                "QuarryStories",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryCommands",
            dependencies: [
                "QuarryAgents",
                "QuarryCapture",
                "QuarryCore",
                "QuarryElastic",
                "QuarryElasticsearchAPI",
                "QuarryLiquid",
                "QuarryPacketbeat",
                "QuarrySamples",
                "QuarrySearch",
                "QuarryServer",
                "QuarryStories",
                "QuarryStoriesSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "QuarryCLI",
            dependencies: [
                "QuarryCommands",
                "QuarryCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "QuarryBench",
            dependencies: [
                "QuarryAgents", "QuarryCapture", "QuarryCore", "QuarryDNS", "QuarryElastic", "QuarryElasticsearchAPI",
                "QuarryLiquid",
                "QuarryPacketbeat",
                "QuarrySamples", "QuarrySearch", "QuarryServer", "QuarryStories", "QuarryStoriesSQLite",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "bench/QuarryBench",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FuzzSupport",
            path: "fuzz/FuzzSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzDNS",
            dependencies: ["FuzzSupport", "QuarryDNS"],
            path: "fuzz/FuzzDNS",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzQuarry",
            dependencies: [
                "FuzzSupport", "QuarryAgents", "QuarryCore", "QuarryElasticsearchAPI", "QuarryLiquid", "QuarrySearch",
                "QuarryStories",
            ],
            path: "fuzz/FuzzQuarry",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzCapture",
            dependencies: ["FuzzSupport", "QuarryCapture", "QuarryPacketbeat"],
            path: "fuzz/FuzzCapture",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QuarryTesting",
            dependencies: [
                "QuarryAgents",
                "QuarryCore",
                "QuarryElasticsearchAPI",
                "QuarrySearch",
                "QuarryServer",
                "QuarryStories",
                "QuarryStoriesSQLite",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryCoreTests",
            dependencies: ["QuarryCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryDNSTests",
            dependencies: ["QuarryCore", "QuarryDNS", "QuarryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryPacketbeatTests",
            dependencies: [
                "QuarryCapture", "QuarryCore", "QuarryDNS", "QuarryPacketbeat", "QuarrySamples", "QuarrySearch",
                "QuarryServer", "QuarryTesting",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryLiquidTests",
            dependencies: ["QuarryCore", "QuarryLiquid", "QuarryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryStoriesTests",
            dependencies: [
                "QuarryAgents", "QuarryCore", "QuarryElasticsearchAPI", "QuarryPacketbeat", "QuarrySamples",
                "QuarrySearch", "QuarryServer", "QuarryStories", "QuarryStoriesSQLite", "QuarryTesting",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryAgentsTests",
            dependencies: [
                "QuarryAgents", "QuarryCore", "QuarryElasticsearchAPI", "QuarrySearch", "QuarryServer",
                "QuarryStories", "QuarryTesting",
                .product(name: "Clocks", package: "swift-clocks"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarrySearchTests",
            dependencies: [
                "QuarryCore", "QuarryElasticsearchAPI", "QuarryPacketbeat", "QuarrySamples", "QuarrySearch",
                "QuarryTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryCaptureTests",
            dependencies: ["QuarryCapture", "QuarryCore", "QuarryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarrySamplesTests",
            dependencies: ["QuarryCapture", "QuarrySamples", "QuarryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryMailTests",
            dependencies: ["QuarryMail", "QuarryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryCommandsTests",
            dependencies: [
                "QuarryCommands", "QuarryCore", "QuarrySearch", "QuarryTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryElasticTests",
            dependencies: [
                "QuarryCore", "QuarryElastic", "QuarrySearch", "QuarryTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryElasticsearchAPITests",
            dependencies: ["QuarryCore", "QuarryElasticsearchAPI", "QuarrySearch", "QuarryTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QuarryServerTests",
            dependencies: [
                "QuarryAgents",
                "QuarryCore",
                "QuarryElasticsearchAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "QuarrySearch",
                "QuarryServer",
                "QuarryStories",
                "QuarryTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
