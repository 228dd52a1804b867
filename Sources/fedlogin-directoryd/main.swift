// fedlogin-directoryd alone, linked without the daemon (the package ships the
// multi-call `fedlogin` under this name instead: Sources/fedlogin).
import FedloginDirectorydCLI

await FedloginDirectoryd.main(arguments: Array(CommandLine.arguments.dropFirst()))
