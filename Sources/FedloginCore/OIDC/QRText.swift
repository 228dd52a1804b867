/// Draws a QR code's modules as text with Unicode half blocks, two module
/// rows per line. The glyphs are the light modules, so the code reads
/// correctly on the usual light-on-dark terminal; a quiet zone of `quiet`
/// light modules surrounds it, 4 as ISO/IEC 18004 asks.
public enum QRText {
    /// The quiet zone ISO/IEC 18004 asks for, in modules.
    public static let quietZone = 4

    public static func render(modules: [[Bool]], quiet: Int = quietZone) -> String {
        let n = modules.count
        let size = n + 2 * quiet
        func dark(_ r: Int, _ c: Int) -> Bool {
            let rr = r - quiet
            let cc = c - quiet
            guard rr >= 0, rr < n, cc >= 0, cc < n else { return false }
            return modules[rr][cc]
        }
        var lines: [String] = []
        var r = 0
        while r < size {
            var line = ""
            for c in 0..<size {
                let top = !dark(r, c)
                let bottom = r + 1 < size ? !dark(r + 1, c) : false
                switch (top, bottom) {
                case (true, true): line += "\u{2588}"
                case (true, false): line += "\u{2580}"
                case (false, true): line += "\u{2584}"
                case (false, false): line += " "
                }
            }
            lines.append(line)
            r += 2
        }
        return lines.joined(separator: "\n")
    }
}
