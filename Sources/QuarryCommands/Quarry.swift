public import ArgumentParser
import Foundation
import Logging
import QuarryCore
import QuarryElasticsearchAPI
import Synchronization

/// The `quarry` command: the composition root that parses arguments and wires the libraries together.
///
/// ```swift
/// await Quarry.main()  // the executable
/// var command = try Quarry.parseAsRoot(["story", "lint", "hunt.yaml"])  // a test, in process
/// if var asynchronous = command as? any AsyncParsableCommand { try await asynchronous.run() } else { try command.run() }
/// ```
public struct Quarry: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "quarry",
        abstract: "Self-hosted threat hunting: stories of agents over an embedded Elasticsearch-compatible store.",
        version: "quarry \(QuarryVersion.number) (Elasticsearch API \(ElasticsearchAPI.version))",
        subcommands: [
            Hunt.self, StoryCommand.self, Runs.self, Credentials.self, Resources.self, Serve.self, Users.self, Es.self,
            Index.self, Bulk.self, Ingest.self, Search.self, Template.self, Demo.self, Sample.self,
        ]
    )

    public init() {}
}

/// Options shared by every command that opens the embedded store.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "The data directory (default: $QUARRY_DATA, else $XDG_DATA_HOME/quarry or ~/.local/share/quarry)."
    )
    var data: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    var dataDirectory: URL {
        if let data { return URL(fileURLWithPath: data) }
        let environment = ProcessInfo.processInfo.environment
        if let value = environment["QUARRY_DATA"], !value.isEmpty { return URL(fileURLWithPath: value) }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("quarry")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share/quarry")
    }

    /// The data directory of a command that only reads: one that does not exist is an error rather than created
    /// empty (a typo in `--data` would otherwise leave a new directory and answer "nothing").
    func existingDataDirectory() throws -> URL {
        let directory = dataDirectory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw CommandFailure(
                "no data directory at \(directory.path): nothing was stored there yet (quarry ingest, quarry bulk or "
                    + "quarry serve create it)"
            )
        }
        return directory
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
    }

    /// Bootstraps logging to standard error (once per process: commands run in process by tests share it) and
    /// returns the root logger at this command's level.
    func makeLogger() -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingBootstrap.once(level: level)
        var logger = Logger(label: "quarry")
        logger.logLevel = level
        return logger
    }
}

/// swift-log's bootstrap may run once per process: the first command's level becomes the handlers' level (the
/// executable runs one command; tests that run several in process share the first one's).
private enum LoggingBootstrap {
    private static let done = Mutex(false)

    static func once(level: Logger.Level) {
        done.withLock { done in
            guard !done else { return }
            done = true
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// Reads `JSON` given inline, as `@file`, or `-` for standard input.
func readArgument(_ value: String) throws -> [UInt8] {
    if value == "-" {
        return Array(FileHandle.standardInput.readDataToEndOfFile())
    }
    if value.hasPrefix("@") {
        let path = String(value.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("cannot read \(path)")
        }
        return Array(data)
    }
    return Array(value.utf8)
}

/// A secret from standard input: on a terminal, asked for with `prompt` and read as one line without echo (as
/// `passwd` reads one); otherwise all of the input, less one trailing newline, as a script pipes it.
func readSecret(prompt: String) -> String {
    let input = FileHandle.standardInput.fileDescriptor
    guard isatty(input) == 1 else {
        var value = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        if value.hasSuffix("\n") { value.removeLast() }
        if value.hasSuffix("\r") { value.removeLast() }
        return value
    }
    FileHandle.standardError.write(Data(prompt.utf8))
    var saved = termios()
    let hidden = tcgetattr(input, &saved) == 0
    if hidden {
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(input, TCSAFLUSH, &quiet)
    }
    defer {
        if hidden { tcsetattr(input, TCSAFLUSH, &saved) }
        FileHandle.standardError.write(Data("\n".utf8))
    }
    return readLine(strippingNewline: true) ?? ""
}

/// Limits glibc's malloc to two arenas. By default every thread that allocates (NIO's event loops, the thread
/// pool, the cores that parse bulk requests) gets an arena of its own that keeps freed memory, which can double
/// the resident size of a long ingest for no gain on two cores.
func tuneMemoryAllocator() {
    #if os(Linux)
    let arenaMaximum: Int32 = -8  // M_ARENA_MAX in <malloc.h>, which Glibc's Swift module does not export.
    _ = glibcMallopt(arenaMaximum, 2)
    #endif
}

#if os(Linux)
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A command that could not do its work (unlike `ValidationError`, which is about its arguments, this prints
/// no usage).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
