// fedlogin: one executable under three names, as busybox is. The package
// installs it once, /usr/libexec/fedlogin/fedlogin, with fedlogind,
// fedloginctl and fedlogin-directoryd as symlinks to it, so it carries one
// Swift runtime and one Foundation instead of three (docs/packaging.md).
//
// The name it was started under (the last component of argv[0]) picks the
// command; started as `fedlogin`, the first argument names it:
// `fedlogin fedloginctl status` is `fedloginctl status`.
import FedloginDirectorydCLI
import FedloginctlCLI
import FedlogindCLI

#if canImport(Glibc)
    import Glibc
#endif

/// The commands, by the name each is started under; false for any other name.
func run(_ name: String, _ arguments: [String]) async -> Bool {
    switch name {
    case "fedlogind": await Fedlogind.main(arguments: arguments)
    case "fedloginctl": await Fedloginctl.main(arguments: arguments)
    case "fedlogin-directoryd": await FedloginDirectoryd.main(arguments: arguments)
    default: return false
    }
    return true
}

let usage = """
    fedlogin is fedlogind, fedloginctl and fedlogin-directoryd in one executable. \
    Run it under one of these three names (the package installs them as symlinks to it: \
    /usr/sbin/fedlogind, /usr/bin/fedloginctl, /usr/sbin/fedlogin-directoryd), \
    or as: fedlogin fedlogind|fedloginctl|fedlogin-directoryd [ARGUMENTS...]

    """

/// The usage error: the message on stderr, exit 64 (EX_USAGE).
func usageError(_ problem: String) -> Never {
    let text = Array("fedlogin: \(problem). \(usage)".utf8)
    _ = text.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
    exit(64)
}

let argv = CommandLine.arguments
let invokedAs = argv.first.flatMap { $0.split(separator: "/").last.map(String.init) } ?? ""
if invokedAs == "fedlogin" {
    let name = argv.count > 1 ? argv[1] : ""
    if name == "--help" || name == "-h" {
        print(usage, terminator: "")
    } else if !(await run(name, Array(argv.dropFirst(2)))) {
        usageError(name.isEmpty ? "no command given" : "unknown command '\(name)'")
    }
} else if !(await run(invokedAs, Array(argv.dropFirst()))) {
    usageError("started as '\(invokedAs)', which is none of its names")
}
