import FuzzSupport
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
@_cdecl("FuzzDNS_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzDNS)
}
#else
/// Without libFuzzer: runs the entry point on the files or directories given, as a regression check of saved
/// inputs.
@main
enum FuzzDNSRunner {
    static func main() throws {
        try runSavedInputs(CommandLine.arguments.dropFirst(), fuzzDNS)
    }
}
#endif
