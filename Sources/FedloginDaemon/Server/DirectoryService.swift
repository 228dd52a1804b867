import FedloginCore

/// The directory as fedlogind uses it: `DirectoryClient` (the directory
/// socket) in production; a fake directory in the daemon's in-process tests.
/// Unreachable or unable to serve: `DirectoryClient.Unavailable`; a
/// refused password change: `DirectoryClient.Refused`.
protocol DirectoryService: Sendable {
    func lookup(_ user: String) async throws -> DirectoryUser?
    func policy(device: String) async throws -> DevicePolicy
    func deviceUsers(device: String) async throws -> [String]
    func access(user: String, device: String) async throws -> DeviceAccess?
    func userOnDevice(_ name: String, device: String) async throws -> (DirectoryUser?, DevicePolicy?, DeviceAccess?)
    func changePassword(user: String, current: SecretBytes, new: SecretBytes) async throws
    func report(_ binding: BindingReport) async throws
}

extension DirectoryService {
    /// A user, the device's policy and what the directory says about the
    /// user on the device; all nil when there is no such user.
    func userOnDevice(_ name: String, device: String) async throws -> (DirectoryUser?, DevicePolicy?, DeviceAccess?) {
        guard let user = try await lookup(name) else { return (nil, nil, nil) }
        let policy = try await self.policy(device: device)
        return (user, policy, try await access(user: user.username, device: device))
    }
}

extension DirectoryClient: DirectoryService {}
