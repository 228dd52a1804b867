/// Keeps a cache of answers by name bounded (fedlogind's NSS answers).
public enum CacheBound {
    /// The names to drop so that one more answer fits in at most `max`:
    /// none while there is room; else every expired answer (stored `ttl`
    /// or longer ago, or "in the future" after a clock change), and if that
    /// is not enough the oldest, down to three quarters of `max`.
    public static func evictions(stored: [String: Double], now: Double, ttl: Double, max: Int) -> [String] {
        guard stored.count >= max else { return [] }
        var out: [String] = []
        var fresh: [(String, Double)] = []
        for (name, at) in stored {
            if now - at < ttl && now >= at { fresh.append((name, at)) } else { out.append(name) }
        }
        if fresh.count >= max {
            fresh.sort { ($0.1, $0.0) < ($1.1, $1.0) }
            out += fresh.prefix(fresh.count - max * 3 / 4).map(\.0)
        }
        return out
    }
}
