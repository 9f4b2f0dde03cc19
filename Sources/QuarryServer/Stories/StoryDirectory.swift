import Foundation
public import Logging
import NIOConcurrencyHelpers
public import QuarryStories
public import ServiceLifecycle

/// The story files of a directory (`quarry serve --stories DIR`), kept loaded while the server runs: a new or changed
/// `.yaml`, `.yml` or `.json` file is read and registered within a second, a removed one's story is forgotten, and a
/// file that does not lint is remembered with its problems (shown on `/stories`) instead of stopping anything.
///
/// Polls modification times and sizes rather than using inotify: portable, and a second is quick enough for a file
/// someone just saved.
public final class StoryDirectory<EngineClock: Clock>: Service, Sendable where EngineClock.Duration == Duration {
    /// A file that does not load, with its problems and their lines.
    public struct Failure: Sendable {
        public var file: String
        public var problems: [(message: String, line: Int?)]
    }

    public let path: String
    let engine: StoryEngine<EngineClock>
    let logger: Logger
    let interval: Duration
    private let state = NIOLockedValueBox(State())

    struct State {
        /// Each file's modification time and size when it was last read.
        var stamps: [String: FileStamp] = [:]
        /// The story each file registered.
        var stories: [String: String] = [:]
        var failures: [String: Failure] = [:]
    }

    struct FileStamp: Equatable {
        var modified: Date
        var size: Int
    }

    public init(path: String, engine: StoryEngine<EngineClock>, logger: Logger, interval: Duration = .seconds(1)) {
        self.path = path
        self.engine = engine
        self.logger = logger
        self.interval = interval
    }

    /// The files that do not load, by name.
    public var failures: [Failure] {
        state.withLockedValue { $0.failures.values.sorted { $0.file < $1.file } }
    }

    /// The stories loaded, with their files, by file name.
    public var loaded: [(file: String, story: String)] {
        state.withLockedValue { $0.stories.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    /// Reads the files that are new or changed since the last scan and forgets the stories of removed ones.
    /// - Throws: Only when the directory itself cannot be listed.
    public func scan() async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            .filter { name in [".yaml", ".yml", ".json"].contains(where: name.hasSuffix) && !name.hasPrefix(".") }
        let known = state.withLockedValue { $0.stamps }
        for name in names {
            let file = (path as NSString).appendingPathComponent(name)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: file),
                let modified = attributes[.modificationDate] as? Date
            else { continue }
            let stamp = FileStamp(modified: modified, size: (attributes[.size] as? NSNumber)?.intValue ?? 0)
            if known[name] == stamp { continue }
            await load(name, file: file, stamp: stamp)
        }
        for (name, _) in known where !names.contains(name) {
            let story = state.withLockedValue { state -> String? in
                state.stamps[name] = nil
                state.failures[name] = nil
                return state.stories.removeValue(forKey: name)
            }
            // Another file may have registered the same story since; only a story no file provides goes.
            if let story, !state.withLockedValue({ $0.stories.values.contains(story) }) {
                _ = try? await engine.unregister(story: story)
                logger.notice("story file removed: story unloaded", metadata: ["file": "\(name)", "story": "\(story)"])
            }
        }
    }

    private func load(_ name: String, file: String, stamp: FileStamp) async {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            record(name, stamp: stamp, failure: [("cannot read the file: \(error.localizedDescription)", nil)])
            return
        }
        do {
            let story = try Story(text: text)
            try await engine.register(story)
            state.withLockedValue { state in
                state.stamps[name] = stamp
                state.stories[name] = story.name
                state.failures[name] = nil
            }
            logger.info("story loaded", metadata: ["file": "\(file)", "story": "\(story.name)"])
        } catch {
            let problems = (error as? StoryProblems)?.problems ?? [StoryProblem("story", "\(error)")]
            let map = StorySourceMap(text: text)
            record(name, stamp: stamp, failure: problems.map { ($0.description, map.position(of: $0)?.line) })
            logger.error(
                "story file does not load",
                metadata: ["file": "\(file)", "problems": "\(problems.map(\.description).joined(separator: "; "))"]
            )
        }
    }

    private func record(_ name: String, stamp: FileStamp, failure problems: [(message: String, line: Int?)]) {
        state.withLockedValue { state in
            state.stamps[name] = stamp
            state.failures[name] = Failure(file: name, problems: problems)
        }
    }

    /// Scans every `interval` until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: self.interval)
                    try await self.scan()
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.error("the story directory cannot be read", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
