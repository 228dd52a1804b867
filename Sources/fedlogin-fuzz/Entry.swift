import Foundation

#if FUZZING
    import CFuzzer

    /// libFuzzer's entry points (a build with -sanitize=fuzzer -DFUZZING): the
    /// target comes from FEDLOGIN_FUZZ_TARGET, everything else from libFuzzer's
    /// arguments.
    let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["FEDLOGIN_FUZZ_TARGET"] ?? "wire"
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("FEDLOGIN_FUZZ_TARGET must be one of \(FuzzTarget.allCases.map(\.rawValue))\n".utf8))
            exit(2)
        }
        return t
    }()

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        selected.run(size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    @_cdecl("fedlogin_fuzz_main")
    public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
        var c = argc
        var v: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&c, &v) { data, size in fuzzOne(data, size) }
    }
#else
    /// Without libFuzzer: replays corpus files or folders through a target, so
    /// the committed corpora and any crash found are regression tests of the
    /// ordinary build.
    ///     fedlogin-fuzz TARGET PATH...
    @main
    struct Replay {
        static func main() throws {
            let args = CommandLine.arguments.dropFirst()
            guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count >= 2 else {
                FileHandle.standardError.write(Data("usage: fedlogin-fuzz wire|directory|config FILE-OR-FOLDER...\n".utf8))
                exit(2)
            }
            var count = 0
            for path in args.dropFirst() {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                    FileHandle.standardError.write(Data("fedlogin-fuzz: \(path): no such file\n".utf8))
                    exit(2)
                }
                let files =
                    isDir.boolValue
                    ? (try FileManager.default.contentsOfDirectory(atPath: path)).sorted().map { path + "/" + $0 } : [path]
                for f in files {
                    target.run(Array(try Data(contentsOf: URL(fileURLWithPath: f))))
                    count += 1
                }
            }
            print("fedlogin-fuzz \(name): \(count) inputs, no failure")
        }
    }
#endif
