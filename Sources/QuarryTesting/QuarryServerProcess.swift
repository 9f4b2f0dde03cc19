public import Foundation
import QuarryCore
import Synchronization

/// A `quarry` server started as a child process for a test.
public enum QuarryServerProcess {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs `quarry ARGUMENTS` and waits until it prints `ANNOUNCEMENT http(s)://127.0.0.1:PORT` (other listeners may
    /// print their lines first); returns the process and that port. The `elastic` user's password is
    /// ``TestElasticUser/password`` (through `QUARRY_ELASTIC_PASSWORD`), so requests authenticate with
    /// ``TestElasticUser/authorization``.
    public static func start(
        _ arguments: [String],
        announcement: String,
        environment extra: [String: String] = [:]
    ) async throws -> (Process, Int) {
        try await onThreadOfItsOwn { try startBlocking(arguments, announcement: announcement, environment: extra) }
    }

    private static func startBlocking(
        _ arguments: [String],
        announcement: String,
        environment extra: [String: String]
    ) throws -> (Process, Int) {
        guard let executable = ProjectPaths.quarryExecutable else {
            throw Failure(description: "the quarry executable is built by `swift build` (scripts/test does it first)")
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["QUARRY_ELASTIC_PASSWORD"] = TestElasticUser.password
        process.environment = environment.merging(extra) { $1 }
        // Both streams are pipes of this process's, forwarded by threads of their own: a server that outlives its
        // test (one that threw before stopping it) must not hold the test runner's own output open, or whatever
        // reads that output (CI) waits for it.
        let (output, errors) = (Pipe(), Pipe())
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        ChildProcesses.register(process)
        ChildProcesses.forward(errors.fileHandleForReading, to: .standardError)
        let (text, announced) = ChildProcesses.read(
            output.fileHandleForReading,
            until: { $0.contains(announcement) && $0.hasSuffix("\n") },
            timeLimit: .seconds(300)
        )
        ChildProcesses.forward(output.fileHandleForReading, to: .standardOutput)
        guard
            announced,
            let range = text.range(of: "\(announcement) http://127.0.0.1:")
                ?? text.range(of: "\(announcement) https://127.0.0.1:"),
            let port = Int(text[range.upperBound...].prefix { $0.isNumber })
        else {
            ChildProcesses.kill(process)
            throw Failure(description: "quarry \(arguments.first ?? "") printed no '\(announcement)' line: \(text)")
        }
        return (process, port)
    }

    /// Asks a `quarry` process to stop with `signal` (SIGTERM: a clean shutdown) and waits for it to end, killing it
    /// and its process group when it has not ended within a minute.
    public static func stop(_ process: Process, signal: Int32 = SIGTERM) {
        ChildProcesses.stop(process, signal: signal)
    }
}

/// Runs the built `quarry` executable to its end, for the tests that must observe a process: exit statuses,
/// standard output as a script reads it, signals.
public enum QuarryCommand {
    /// What one run of `quarry` did.
    public struct Result: Sendable {
        public var status: Int32
        public var output: Data
        public var error: String
        /// Standard output as text.
        public var text: String { String(decoding: output, as: UTF8.self) }
    }

    /// Runs `quarry ARGUMENTS` with `input` on standard input (closed at once when nil) and `environment` added to
    /// this process's, and waits for it to end.
    public static func run(
        _ arguments: [String],
        input: String? = nil,
        environment: [String: String] = [:]
    ) async throws -> Result {
        try await onThreadOfItsOwn { try runBlocking(arguments, input: input, environment: environment) }
    }

    private static func runBlocking(
        _ arguments: [String],
        input: String?,
        environment: [String: String]
    ) throws -> Result {
        guard let executable = ProjectPaths.quarryExecutable else {
            throw QuarryServerProcess.Failure(
                description: "the quarry executable is built by `swift build` (scripts/test does it first)"
            )
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let (output, error, standardInput) = (Pipe(), Pipe(), Pipe())
        process.standardOutput = output
        process.standardError = error
        process.standardInput = standardInput
        try process.run()
        if let input { standardInput.fileHandleForWriting.write(Data(input.utf8)) }
        try standardInput.fileHandleForWriting.close()
        let (data, status, killed) = ChildProcesses.collect(
            [output.fileHandleForReading, error.fileHandleForReading],
            of: process,
            timeLimit: ChildProcesses.timeLimit
        )
        var errors = String(decoding: data[1], as: UTF8.self)
        if killed { errors += "\n[killed by the test: still running after \(ChildProcesses.timeLimit)]" }
        return Result(status: status, output: data[0], error: errors)
    }
}

/// Runs another program (tshark, openssl, a Python script) to its end and returns its exit status and standard
/// output; its standard error is discarded, or read into the output with `mergingErrors`.
public func runTool(
    _ executable: String,
    _ arguments: [String],
    mergingErrors: Bool = false
) async throws -> (status: Int32, output: Data) {
    try await onThreadOfItsOwn { try runToolBlocking(executable, arguments, mergingErrors: mergingErrors) }
}

/// ``runTool(_:_:)`` on the calling thread: only for a test trait's condition, which cannot await, and for a quick
/// probe such as `python3 -c 'import selenium'`.
public func runToolBlocking(
    _ executable: String,
    _ arguments: [String],
    mergingErrors: Bool = false
) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = mergingErrors ? output : FileHandle.nullDevice
    try process.run()
    let (data, status, _) = ChildProcesses.collect(
        [output.fileHandleForReading],
        of: process,
        timeLimit: ChildProcesses.timeLimit
    )
    return (status, data[0])
}
