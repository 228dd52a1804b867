import CQRencode
import FedloginCore

/// QR codes through libqrencode.
enum QRCode {
    /// The text drawing of a QR code for `text`, or nil if it cannot be encoded.
    static func text(for text: String) -> String? {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let data = code.pointee.data!
        let modules = (0..<width).map { r in (0..<width).map { c in data[r * width + c] & 1 == 1 } }
        return QRText.render(modules: modules, quiet: QRText.quietZone)
    }
}
