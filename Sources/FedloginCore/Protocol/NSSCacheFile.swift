/// The NSS cache file fedlogind publishes next to its socket
/// (`/run/fedlogin/nss.cache`) and libnss_fedlogin reads before asking the
/// daemon (docs/protocol.md, "NSS cache file"; the reader is
/// pam/nss_cache.c). Little-endian, no padding:
///
///     header   magic "FLNSSCH1", u32 version, u32 size, i64 generated,
///              i64 ids_until, u32 n_names, u32 n_ids, u32 names_off, u32 ids_off
///     names    n_names u32 record offsets, by name (unsigned bytes)
///     ids      n_ids u32 record offsets, by uid (USER and ASK records)
///     records  u8 kind, 3 zero bytes, u32 uid, u32 gid, i64 expires,
///              then name, gecos, dir, shell as u16 length + bytes
///
/// Pure: the daemon decides what goes in and writes the bytes.
public enum NSSCacheFile {
    public static let magic = Array("FLNSSCH1".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 48
    /// The reader ignores larger files.
    public static let maxSize = 8 << 20
    public static let maxEntries = 65536

    public enum Kind: UInt8, Sendable {
        /// A passwd entry and its private group.
        case user = 1
        /// The name is neither a passwd nor a group entry.
        case notFound = 2
        /// A reserved uid without a fresh answer: the reader asks fedlogind.
        case ask = 3
    }

    public struct Record: Equatable, Sendable {
        public var kind: Kind
        public var name: String
        public var uid: UInt32
        public var gid: UInt32
        /// Unix seconds; the record answers while now < expires.
        public var expires: Int64
        public var gecos: String
        public var dir: String
        public var shell: String

        public init(
            kind: Kind, name: String, uid: UInt32 = 0, gid: UInt32 = 0, expires: Int64, gecos: String = "", dir: String = "",
            shell: String = ""
        ) {
            self.kind = kind
            self.name = name
            self.uid = uid
            self.gid = gid
            self.expires = expires
            self.gecos = gecos
            self.dir = dir
            self.shell = shell
        }

        public static func user(_ e: PasswdEntry, expires: Int64) -> Record {
            Record(kind: .user, name: e.name, uid: e.uid, gid: e.gid, expires: expires, gecos: e.gecos, dir: e.dir, shell: e.shell)
        }
    }

    /// The file holding `records` (one per name; the first of equal names,
    /// and of equal uids in the id index, wins). Records that could not be
    /// read back (a string over its limit) are left out, and so are records
    /// past `maxEntries` or `maxSize`: a record missing from the file only
    /// means the reader asks fedlogind. But a uid missing from the id index
    /// means "not fedlogin's" until `idsUntil`, so when a USER or ASK record
    /// is left out the file makes no such claim (`ids_until` 0).
    public static func encode(records: [Record], generated: Int64, idsUntil: Int64) -> [UInt8] {
        var seen = Set<[UInt8]>()
        var byName: [([UInt8], Record)] = []
        var idsComplete = true
        for r in records {
            let name = Array(r.name.utf8)
            guard seen.insert(name).inserted else { continue }
            guard !name.isEmpty, name.count <= 256, r.gecos.utf8.count <= Wire.maxString, r.dir.utf8.count <= Wire.maxString,
                r.shell.utf8.count <= Wire.maxString
            else {
                if r.kind != .notFound { idsComplete = false }
                continue
            }
            byName.append((name, r))
        }
        byName.sort { $0.0.lexicographicallyPrecedes($1.0) }
        if byName.count > maxEntries {
            if byName[maxEntries...].contains(where: { $0.1.kind != .notFound }) { idsComplete = false }
            byName.removeLast(byName.count - maxEntries)
        }
        // Drop records from the end of the name order until the file fits.
        var blobs = byName.map { encode(record: $0.1, name: $0.0) }
        func idRecords() -> [Int] {
            var uids = Set<UInt32>()
            return blobs.indices.filter { byName[$0].1.kind != .notFound }.sorted { byName[$0].1.uid < byName[$1].1.uid }
                .filter { uids.insert(byName[$0].1.uid).inserted }
        }
        var ids = idRecords()
        while headerSize + 4 * (blobs.count + ids.count) + blobs.reduce(0, { $0 + $1.count }) > maxSize {
            blobs.removeLast()
            if byName.removeLast().1.kind != .notFound { idsComplete = false }
            ids = idRecords()
        }
        let namesOff = headerSize
        let idsOff = namesOff + 4 * blobs.count
        var offsets: [Int] = []
        var pos = idsOff + 4 * ids.count
        for b in blobs {
            offsets.append(pos)
            pos += b.count
        }
        var out: [UInt8] = []
        out.reserveCapacity(pos)
        out += magic
        put(&out, version)
        put(&out, UInt32(pos))
        put(&out, generated)
        put(&out, idsComplete ? idsUntil : 0)
        put(&out, UInt32(blobs.count))
        put(&out, UInt32(ids.count))
        put(&out, UInt32(namesOff))
        put(&out, UInt32(idsOff))
        for o in offsets { put(&out, UInt32(o)) }
        for i in ids { put(&out, UInt32(offsets[i])) }
        for b in blobs { out += b }
        return out
    }

    static func encode(record r: Record, name: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [r.kind.rawValue, 0, 0, 0]
        put(&out, r.uid)
        put(&out, r.gid)
        put(&out, r.expires)
        for s in [name, Array(r.gecos.utf8), Array(r.dir.utf8), Array(r.shell.utf8)] {
            put(&out, UInt16(s.count))
            out += s
        }
        return out
    }

    static func put<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }
}
