/// Which names and uids a directory user may never get on this machine
/// (docs/accounts.md): names that belong to the system or to services,
/// and directory-assigned uids outside their own range or inside the
/// subordinate id ranges of /etc/subuid and /etc/subgid. A user refused
/// here is neither announced by NSS nor provisioned.
public struct AccountRules: Sendable, Equatable {
    /// Names from `accounts.reserved_names`, in addition to the built-in ones.
    public var extraReservedNames: Set<String>
    /// The range a directory-assigned uid must lie in
    /// (`accounts.directory_uid_min` ... `directory_uid_max`).
    public var directoryUIDs: ClosedRange<UInt32>
    /// The subordinate uid and gid ranges (user namespaces) of /etc/subuid and /etc/subgid.
    public var subordinateIDs: [ClosedRange<UInt32>]
    /// Set when /etc/subuid or /etc/subgid exists but cannot be read: then no
    /// directory-assigned uid is accepted (fail closed).
    public var subordinateUnreadable: String? = nil

    public init(extraReservedNames: Set<String> = [], directoryUIDs: ClosedRange<UInt32>, subordinateIDs: [ClosedRange<UInt32>] = []) {
        self.extraReservedNames = Set(extraReservedNames.map(Self.asciiLowered))
        self.directoryUIDs = directoryUIDs
        self.subordinateIDs = subordinateIDs
    }

    /// Debian's base-passwd users and groups (every account gets a private
    /// group of its name, so group names count too).
    public static let basePasswdNames: Set<String> = [
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
        "backup", "list", "irc", "gnats", "nobody", "_apt",
        "adm", "tty", "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio", "dip",
        "operator", "src", "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users", "nogroup",
    ]

    /// Accounts and groups that common Debian and Ubuntu packages create,
    /// and the administrative names an attacker would pick.
    public static let serviceNames: Set<String> = [
        // systemd and the base system
        "messagebus", "sshd", "polkitd", "uuidd", "tss", "tcpdump", "syslog", "input", "kvm", "render", "sgx", "netdev",
        "lpadmin", "wheel", "admin", "administrator", "ssl-cert", "crontab", "mlocate", "plocate", "systemd-journal",
        "dnsmasq", "avahi", "avahi-autoipd", "colord", "rtkit", "pulse", "pulse-access", "saned", "geoclue", "usbmux",
        "lightdm", "gdm", "sddm", "hplip", "speech-dispatcher", "kernoops", "whoopsie", "fwupd-refresh", "landscape",
        "pollinate", "nm-openvpn", "cups-pk-helper", "bluetooth", "scanner", "lxd", "docker", "dockremap",
        "libvirt", "libvirt-qemu", "libvirt-dnsmasq", "qemu",
        // mail, time, names, directory clients
        "postfix", "postdrop", "dovecot", "dovenull", "exim", "bind", "named", "ntp", "ntpsec", "chrony", "statd",
        "nslcd", "sssd", "openldap", "snmp", "fetchmail", "spamd", "clamav", "opendkim",
        // servers and databases
        "postgres", "mysql", "mariadb", "redis", "mongodb", "rabbitmq", "memcache", "memcached", "nginx", "apache",
        "httpd", "tomcat", "jetty", "squid", "haproxy", "varnish", "ftp", "git", "gitlab", "gitlab-runner", "jenkins",
        "nagios", "zabbix", "prometheus", "grafana", "elasticsearch", "kibana", "solr", "vault", "consul", "etcd",
        "nfsnobody", "rpc", "rpcuser", "fedlogin",
    ]

    /// Prefixes of system names: systemd's dynamic and service users, and
    /// Debian's convention of a leading underscore for new system users.
    public static let reservedPrefixes = ["systemd-", "_"]

    /// Why the local name may not be used, or nil.
    public func nameProblem(_ name: String) -> String? {
        let n = Self.asciiLowered(name)
        if Self.basePasswdNames.contains(n) { return "\"\(n)\" is a system account name (Debian base-passwd)" }
        if Self.serviceNames.contains(n) { return "\"\(n)\" is reserved for a system service" }
        if let p = Self.reservedPrefixes.first(where: { n.hasPrefix($0) }) { return "names starting with \"\(p)\" are reserved for the system" }
        if extraReservedNames.contains(n) { return "\"\(n)\" is in accounts.reserved_names" }
        return nil
    }

    /// Why a directory-assigned uid may not be used, or nil.
    public func uidProblem(_ uid: UInt32) -> String? {
        guard directoryUIDs.contains(uid) else {
            return "uid \(uid) is outside the range for directory uids (\(directoryUIDs.lowerBound)-\(directoryUIDs.upperBound))"
        }
        if uid == 65534 || uid == 65535 || uid == UInt32.max { return "uid \(uid) is reserved (nobody, or (uid_t)-1)" }
        if let why = subordinateUnreadable { return "the subordinate id ranges cannot be checked: \(why)" }
        if let r = subordinateIDs.first(where: { $0.contains(uid) }) {
            return "uid \(uid) lies in a subordinate id range (\(r.lowerBound)-\(r.upperBound), /etc/subuid or /etc/subgid)"
        }
        return nil
    }

    /// The ranges of an /etc/subuid or /etc/subgid file (`owner:start:count`
    /// lines; malformed lines are skipped).
    public static func subordinateRanges(_ text: String) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 3, !f[0].isEmpty, let start = UInt64(f[1]), let count = UInt64(f[2]), count > 0 else { continue }
            let end = min(start + count - 1, UInt64(UInt32.max))
            guard start <= UInt64(UInt32.max) else { continue }
            out.append(UInt32(start)...UInt32(end))
        }
        return out
    }

    public static func asciiLowered(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
