public import Foundation

/// A `quarry` server started as a child process for a test.
public enum QuarryServerProcess {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs `quarry ARGUMENTS` and waits until it prints `ANNOUNCEMENT http://127.0.0.1:PORT` (other listeners may
    /// print their lines first); returns the process and that port.
    public static func start(_ arguments: [String], announcement: String) throws -> (Process, Int) {
        guard let executable = ProjectPaths.quarryExecutable else {
            throw Failure(description: "the quarry executable is built by `swift build` (scripts/test does it first)")
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var text = ""
        while !(text.contains(announcement) && text.hasSuffix("\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "\(announcement) http://127.0.0.1:"),
            let port = Int(text[range.upperBound...].prefix { $0.isNumber })
        else {
            process.terminate()
            throw Failure(description: "quarry \(arguments.first ?? "") printed no '\(announcement)' line: \(text)")
        }
        return (process, port)
    }
}
