import CCurl
import FedloginSystem
import Foundation

/// The IdP client's HTTP: `HTTPClient` (libcurl) in fedlogind; a fake IdP
/// in the daemon's in-process tests.
public protocol HTTPTransport: Sendable {
    func get(_ url: String, headers: [String]) async throws -> HTTPClient.Response
    func post(_ url: String, headers: [String], body: Data) async throws -> HTTPClient.Response
}

/// HTTP for the IdP client, through libcurl: bounded by a timeout on every
/// request, proxies from the environment, the system CA store plus an
/// optional bundle. Requests run on a fixed set of threads of their own
/// (`Blocking.http`), off the event loops and the Swift concurrency pool.
public struct HTTPClient: HTTPTransport {
    public var timeout: Double
    public var caBundle: String?

    public struct Response: Sendable {
        public var status: Int
        public var body: Data

        public init(status: Int, body: Data) {
            self.status = status
            self.body = body
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// libcurl's global setup: once, before the first request.
    public static let initialized: Bool = fedlogin_http_init() == 0

    public func get(_ url: String, headers: [String] = []) async throws -> Response {
        try await request("GET", url, headers: headers, body: nil)
    }

    public func post(_ url: String, headers: [String] = [], body: Data) async throws -> Response {
        try await request("POST", url, headers: headers, body: body)
    }

    func request(_ method: String, _ url: String, headers: [String], body: Data?) async throws -> Response {
        guard Self.initialized else { throw Failure(description: "libcurl could not be initialized") }
        let timeoutMS = Int(timeout * 1000)
        let ca = caBundle
        return try await Blocking.http.runIfActive { try Self.perform(method, url, headers, body, timeoutMS, ca) }
    }

    static func perform(_ method: String, _ url: String, _ headers: [String], _ body: Data?, _ timeoutMS: Int, _ ca: String?) throws -> Response {
        var status = 0
        var out: UnsafeMutablePointer<CChar>?
        var outLen = 0
        var err = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let cHeaders = headers.map { strdup($0) }
        defer { cHeaders.forEach { free($0) } }
        let headerPtrs = cHeaders.map { UnsafePointer($0) }
        let payload = body ?? Data()
        let rc: Int32 = headerPtrs.withUnsafeBufferPointer { hp in
            payload.withUnsafeBytes { raw in
                let b = raw.bindMemory(to: CChar.self)
                return fedlogin_http(
                    method, url, hp.baseAddress, Int32(hp.count), b.baseAddress, payload.count, timeoutMS, ca, &status,
                    &out, &outLen, &err)
            }
        }
        guard rc == 0 else { throw Failure(description: String(cString: err)) }
        defer { free(out) }
        let data = out.map { Data(bytes: $0, count: outLen) } ?? Data()
        return Response(status: status, body: data)
    }
}
