import Foundation
import QuarryTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How the tests run their child processes (QuarryTesting's `ChildProcesses`): a child that leaves a descendant
/// holding its output, or that never ends, must not hold the test run (CI waited out its 90 minutes on such a hang).
@Suite(.mayBlock) struct ChildProcessTests {
    @Test func aToolIsDoneWhenItEndsEvenIfWhatItStartedStillHoldsItsOutput() async throws {
        // The shell prints the pid of a sleeper that inherited its standard output, then exits.
        let (status, output) = try await runTool("/bin/sh", ["-c", "sleep 60 & echo $!"])
        #expect(status == 0)
        let sleeper = try #require(
            Int32(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        // Returned while the sleeper still runs: the output was not read "to its end".
        #expect(kill(sleeper, 0) == 0)
        kill(sleeper, SIGKILL)
    }

    @Test func aChildPastItsTimeLimitIsKilledWithItsProcessGroup() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "sleep 60 & echo $!; wait"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let (data, status, killed) = ChildProcesses.collect(
            [output.fileHandleForReading],
            of: process,
            timeLimit: .seconds(1)
        )
        #expect(killed)
        #expect(status == SIGKILL)
        let sleeper = try #require(
            Int32(String(decoding: data[0], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        // The sleeper was in the shell's process group: killed too (waited for by init, so it may linger a moment
        // as a zombie, which `kill(_, 0)` still finds; /proc tells its state).
        var state = ""
        for _ in 0..<100 {
            state = (try? String(contentsOfFile: "/proc/\(sleeper)/stat", encoding: .utf8)) ?? ""
            if state.isEmpty || state.contains(") Z ") { break }
            usleep(20_000)
        }
        #expect(state.isEmpty || state.contains(") Z "), "the sleeper still runs: \(state)")
    }
}
