// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "fedlogin",
    platforms: [.macOS(.v15)],
    products: [
        // The package's one executable: the three commands below under their
        // names, symlinks to it (Sources/fedlogin, docs/packaging.md).
        .executable(name: "fedlogin", targets: ["fedlogin"]),
        // Each command alone, with only what it links (the tests run these).
        .executable(name: "fedlogind", targets: ["fedlogind"]),
        .executable(name: "fedloginctl", targets: ["fedloginctl"]),
        .executable(name: "fedlogin-directoryd", targets: ["fedlogin-directoryd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // Pure logic: wire codec, config, policy, claim checks, username mapping. No I/O.
        .target(
            name: "FedloginCore",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // libcrypt, libsystemd and a few syscalls Swift cannot call directly.
        .systemLibrary(name: "CFedloginSys", path: "Sources/CFedloginSys"),
        // libcurl, for the IdP client's HTTP only.
        .systemLibrary(name: "CCurl", path: "Sources/CCurl"),
        // OpenLDAP's libldap, for fedlogin-directoryd's LDAP backend only.
        .systemLibrary(name: "CLDAP", path: "Sources/CLDAP"),
        // libqrencode, for the device grant's QR code only.
        .systemLibrary(name: "CQRencode", path: "Sources/CQRencode"),
        // The system calls both services make: EINTR-safe reads and writes, atomic
        // durable file writes, programs spawned and waited for, libcrypt, the
        // thread pools that keep blocking work off the concurrency pool.
        .target(
            name: "FedloginSystem",
            dependencies: [
                "FedloginCore", "CFedloginSys",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The IdP client: discovery, keys, the device grant, token requests and
        // their verification, over libcurl. fedlogind signs in with it,
        // fedloginctl checks an IdP's configuration with it.
        .target(
            name: "FedloginOIDC",
            dependencies: [
                "FedloginCore", "FedloginSystem", "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // Frame codec, peer credentials and Unix-socket clients shared by the executables.
        .target(
            name: "FedloginNIO",
            dependencies: [
                "FedloginCore", "CFedloginSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "FedloginDaemon",
            dependencies: [
                "FedloginCore", "CFedloginSys", "CQRencode", "FedloginNIO", "FedloginSystem", "FedloginOIDC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "FedloginDirectory",
            dependencies: [
                "FedloginCore", "CFedloginSys", "CLDAP", "FedloginNIO", "FedloginSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The three commands' command lines (ArgumentParser), each a library
        // with a public entry point, so one executable can carry all three.
        .target(
            name: "FedlogindCLI",
            dependencies: [
                "FedloginDaemon", "FedloginCore", "CFedloginSys",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // fedloginctl does not link FedloginDaemon.
        .target(
            name: "FedloginctlCLI",
            dependencies: [
                "FedloginCore", "FedloginNIO", "FedloginSystem", "FedloginOIDC",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "FedloginDirectorydCLI",
            dependencies: [
                "FedloginDirectory", "FedloginCore", "FedloginNIO", "FedloginSystem", "CFedloginSys",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The multi-call executable the package ships: it runs the command
        // named by the name it was started under.
        .executableTarget(
            name: "fedlogin",
            dependencies: ["FedlogindCLI", "FedloginctlCLI", "FedloginDirectorydCLI"]
        ),
        .executableTarget(name: "fedlogind", dependencies: ["FedlogindCLI"]),
        .executableTarget(name: "fedloginctl", dependencies: ["FedloginctlCLI"]),
        .executableTarget(name: "fedlogin-directoryd", dependencies: ["FedloginDirectorydCLI"]),
        // libFuzzer's driver, declared for the fuzz build (fuzz/README.md).
        .systemLibrary(name: "CFuzzer", path: "Sources/CFuzzer"),
        // Fuzz targets of the Swift decoders; without -DFUZZING it replays corpora.
        .executableTarget(
            name: "fedlogin-fuzz",
            dependencies: ["FedloginCore", "CFuzzer"]
        ),
        .testTarget(
            name: "FedloginSystemTests",
            dependencies: ["FedloginSystem"]
        ),
        .testTarget(
            name: "FedloginCoreTests",
            dependencies: ["FedloginCore"],
            resources: []
        ),
        // fedlogind's request handling in-process: fakes for the world, a fake clock; no root, no /etc.
        .testTarget(
            name: "FedloginDaemonTests",
            dependencies: [
                "FedloginDaemon", "FedloginCore", "FedloginNIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
