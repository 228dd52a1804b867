/// A configuration problem, naming the file, the key and what to do.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var key: String
    public var problem: String

    public init(file: String, key: String, problem: String) {
        self.file = file
        self.key = key
        self.problem = problem
    }

    public var description: String {
        key.isEmpty ? "\(file): \(problem)" : "\(file): \(key): \(problem)"
    }
}
