import FedloginCore
import Foundation

extension Runtime {
    /// The name and uid rules for directory users, with the subordinate id
    /// ranges read now from the system root's /etc/subuid and /etc/subgid
    /// (small files; read at each check so a change applies at once).
    var accountRules: AccountRules {
        let a = config.accounts
        var rules = AccountRules(
            extraReservedNames: Set(a.reservedNames), directoryUIDs: a.directoryUIDMin...a.directoryUIDMax)
        let etc = config.systemRoot == "/" ? "/etc" : config.systemRoot + "/etc"
        for file in ["subuid", "subgid"] {
            let path = etc + "/" + file
            guard FileManager.default.fileExists(atPath: path) else { continue }
            do {
                rules.subordinateIDs += AccountRules.subordinateRanges(try Sys.readText(path))
            } catch {
                rules.subordinateUnreadable = "\(path): \(error)"
            }
        }
        return rules
    }
}
