// fedlogind alone, linked with what the daemon needs (the package ships the
// multi-call `fedlogin` under this name instead: Sources/fedlogin).
import FedlogindCLI

await Fedlogind.main(arguments: Array(CommandLine.arguments.dropFirst()))
