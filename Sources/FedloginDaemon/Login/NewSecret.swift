import FedloginCore

extension PAMConversation {
    /// Asks for a new passcode or password and then for it again, up to
    /// `PasscodePolicy.choiceTries` times, until one has no `problems` and
    /// both answers match; nil when no try did. Refused and repeated answers
    /// are wiped here; the one returned is the caller's to wipe.
    func askNewSecret(
        prompt: String, repeatPrompt: String, weak: String, mismatch: String, timeout: Double,
        problems: (SecretBytes) -> [String]
    ) async throws -> SecretBytes? {
        for attempt in 1...PasscodePolicy.choiceTries {
            let left = PasscodePolicy.triesLeftText(PasscodePolicy.choiceTries - attempt)
            let first = try await askSecret(prompt, timeout: timeout)
            let found = problems(first)
            guard found.isEmpty else {
                first.wipe()
                try await error("\(weak): \(found.joined(separator: "; ")).\(left)")
                continue
            }
            let second: SecretBytes
            do {
                second = try await askSecret(repeatPrompt, timeout: timeout)
            } catch {
                first.wipe()
                throw error
            }
            defer { second.wipe() }
            guard first.constantTimeEquals(second) else {
                first.wipe()
                try await error("\(mismatch)\(left)")
                continue
            }
            return first
        }
        return nil
    }
}
