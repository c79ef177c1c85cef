// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nassync",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nassync", targets: ["nassync"]),
        .library(name: "NassyncCore", targets: ["NassyncCore"]),
        .library(name: "SFTPTransport", targets: ["SFTPTransport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // libssh2 from the system (Debian: libssh2-1-dev); shim.h wraps the macros Swift cannot see.
        .systemLibrary(
            name: "CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        .target(
            name: "SFTPTransport",
            dependencies: [
                "CLibSSH2",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "NassyncCore",
            dependencies: [
                "SFTPTransport",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "nassync",
            dependencies: [
                "NassyncCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Helpers shared by the test targets: the loopback test NAS, scratch folders, test data.
        .target(
            name: "TestSupport",
            dependencies: [
                "SFTPTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),
        // Developer tool for the benchmark scripts and fault tests; not installed.
        .executableTarget(
            name: "nassync-dev",
            dependencies: [
                "SFTPTransport",
                "NassyncCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SFTPTransportTests",
            dependencies: [
                "SFTPTransport",
                "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "NassyncCoreTests",
            dependencies: ["NassyncCore", "SFTPTransport", "TestSupport"]
        ),
        // Runs the built `nassync` binary as a user would, checking output and exit codes.
        .testTarget(
            name: "NassyncCLITests",
            dependencies: ["NassyncCore", "TestSupport"]
        ),
    ]
)
