import FedloginCore
import Testing

struct QRTextTests {
    @Test func theQuietZoneIsFourLightModules() {
        // One dark module: 1 + 2 * 4 = 9 module rows, drawn two per line.
        let text = QRText.render(modules: [[true]])
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0) }
        #expect(QRText.quietZone == 4)
        #expect(lines.count == 5 && lines.allSatisfy { $0.count == 9 })
        // Rows 0-3 light; row 4 holds the dark module at column 4 (the upper half of line 2).
        #expect(lines[0].allSatisfy { $0 == "\u{2588}" } && lines[1].allSatisfy { $0 == "\u{2588}" })
        #expect(lines[2][4] == "\u{2584}" && lines[2][3] == "\u{2588}" && lines[2][5] == "\u{2588}")
        // The ninth row is light; below it the terminal's own background.
        #expect(lines[4].allSatisfy { $0 == "\u{2580}" })
    }
}
