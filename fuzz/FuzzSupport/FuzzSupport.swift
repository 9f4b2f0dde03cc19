import Foundation

/// The entry point a fuzz target gives libFuzzer: the bytes of one input; the result is 0.
public typealias FuzzEntryPoint = @convention(c) (UnsafePointer<UInt8>, Int) -> Int32

#if FUZZING
/// libFuzzer's driver, linked in by `-sanitize=fuzzer`.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzEntryPoint
) -> Int32

/// Hands the process over to libFuzzer's driver with `entryPoint`. SwiftPM links an executable's entry point as
/// `<Target>_main`; each fuzz executable defines that symbol and calls this.
public func runFuzzer(
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ entryPoint: FuzzEntryPoint
) -> Int32 {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, entryPoint)
}
#endif

/// Without libFuzzer: runs `entryPoint` on every file named in `paths` (a directory stands for the files in it),
/// as a regression check of saved inputs such as `fuzz/out/<target>/crash-…`, and prints how many it ran.
public func runSavedInputs(_ paths: some Sequence<String>, _ entryPoint: FuzzEntryPoint) throws {
    var count = 0
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
        let files =
            isDirectory.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).map { path + "/" + $0 } : [path]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            // One byte more than the input, so that an empty input still has an address.
            let bytes = [UInt8](data) + [0]
            _ = bytes.withUnsafeBufferPointer { entryPoint($0.baseAddress!, data.count) }
            count += 1
        }
    }
    print("ran \(count) inputs")
}
