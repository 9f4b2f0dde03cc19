import Foundation

/// A status line rewritten in place on standard error while a long command works (`ingest`, `bulk`,
/// `sample dns`): only when standard error is a terminal, so that a pipe or a log file gets none of it, and at
/// most four times a second.
struct TerminalStatusLine {
    let isTerminal = isatty(STDERR_FILENO) != 0
    private var last = Date.distantPast

    /// Whether a new line is due now (and it is counted as shown): call it before formatting the line.
    mutating func isDue() -> Bool {
        guard isTerminal, Date().timeIntervalSince(last) > 0.25 else { return false }
        last = Date()
        return true
    }

    /// Replaces the line with `text`.
    func show(_ text: String) {
        FileHandle.standardError.write(Data(("\r" + text + "\u{1B}[K").utf8))
    }

    /// Removes the line, before the command prints its summary.
    func clear() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// A duration to wait as a person reads it: `42 s`, `3:07`, `1:02:03`.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total) s" }
        let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60)
        return hours > 0
            ? String(format: "%d:%02d:%02d", hours, minutes, rest) : String(format: "%d:%02d", minutes, rest)
    }
}
