import QuarryCapture
import QuarryPacketbeat

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer entry point for the capture reader and everything after it: the bytes are read as a capture (pcap,
/// pcapng, link layers, IP, fragments, TCP reassembly, DNS, Packetbeat documents). Nothing may trap; damage is
/// counted.
///
///     swift build --product FuzzCapture -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
///     .build/debug/FuzzCapture -max_total_time=600 fuzz/corpus/capture
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var documents = 0
    let ingester = CaptureIngester { _ in documents += 1 }
    do {
        try ingester.ingest(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    } catch {
        return 0
    }
    _ = ingester.finish()
    return 0
}

#if FUZZING
/// SwiftPM links an executable's entry point as `FuzzCapture_main`; under libFuzzer that entry point hands over to
/// libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("FuzzCapture_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzCapture)
}
#else
import Foundation

/// Without libFuzzer: runs the entry point on the files or directories given.
@main
struct FuzzCaptureRunner {
    static func main() throws {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files =
                isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).map { path + "/" + $0 } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                let bytes = [UInt8](data) + [0]
                _ = bytes.withUnsafeBufferPointer { fuzzCapture($0.baseAddress!, data.count) }
                count += 1
            }
        }
        print("ran \(count) inputs")
    }
}
#endif
