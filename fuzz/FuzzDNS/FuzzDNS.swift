import QuarryDNS

/// libFuzzer entry point for the DNS message decoder: any bytes must decode or fail with an error, never trap, and
/// whatever decodes must re-encode to a message that decodes to the same value.
///
///     swift build --product FuzzDNS -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
///     .build/debug/FuzzDNS -max_total_time=600 fuzz/corpus/dns
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNS(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    if let message = try? DNSMessage.decode(bytes) {
        _ = message.answers.map(\.data.presentation)
        _ = message.edns?.options.map(\.description)
        let again = try? DNSMessage.decode(message.encode())
        precondition(again == message, "re-encoding changed the message")
    }
    return 0
}

#if FUZZING
/// SwiftPM links an executable's entry point as `FuzzDNS_main`; under libFuzzer that entry point hands over to
/// libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("FuzzDNS_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzDNS)
}
#else
import Foundation

/// Without libFuzzer: runs the entry point on the files or directories given, as a regression check of saved
/// inputs.
@main
struct FuzzDNSRunner {
    static func main() throws {
        try runOnInputs(CommandLine.arguments.dropFirst()) { bytes in
            _ = bytes.withUnsafeBufferPointer { fuzzDNS($0.baseAddress!, $0.count) }
        }
    }
}

func runOnInputs(_ paths: ArraySlice<String>, _ body: ([UInt8]) -> Void) throws {
    var count = 0
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
        let files =
            isDirectory.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).map { path + "/" + $0 } : [path]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            body([UInt8](data) + [0])
            count += 1
        }
    }
    print("ran \(count) inputs")
}
#endif
