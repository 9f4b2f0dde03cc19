import FuzzSupport
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
@_cdecl("FuzzCapture_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzCapture)
}
#else
/// Without libFuzzer: runs the entry point on the files or directories given, as a regression check of saved
/// inputs.
@main
enum FuzzCaptureRunner {
    static func main() throws {
        try runSavedInputs(CommandLine.arguments.dropFirst(), fuzzCapture)
    }
}
#endif
