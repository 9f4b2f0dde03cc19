public import Foundation

/// A fresh directory under the system's temporary folder, removed by ``withTemporaryDirectory(_:)``.
public func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

/// Paths of the project and of the shared reference corpus beside it.
public enum ProjectPaths {
    /// The package root (the folder holding `Package.swift`).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/corpus` from the package root, when present.
    public static var corpus: URL? {
        let url = root.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// The message tests give when they skip for want of the corpus.
    public static let corpusMissing = "../shared/corpus is absent: the reference-corpus tests are skipped"

    /// The built `quarry` executable (built by `swift build` before the tests run).
    public static var quarryExecutable: URL? {
        for configuration in ["debug", "release"] {
            let url = root.appendingPathComponent(".build/\(configuration)/quarry")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }
}
