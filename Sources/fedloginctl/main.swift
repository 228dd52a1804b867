// fedloginctl alone, linked without the daemon (the package ships the
// multi-call `fedlogin` under this name instead: Sources/fedlogin).
import FedloginctlCLI

await Fedloginctl.main(arguments: Array(CommandLine.arguments.dropFirst()))
