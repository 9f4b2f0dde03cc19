import Foundation

/// Times and durations as the CLI's tables and the web pages show them to people.
public enum ReadableTime {
    /// `2026-12-06 08:32:24Z`: ISO 8601 in UTC with a space, readable in a table.
    public static func timestamp(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "" }
        let text = ISO8601.format(Int64(seconds * 1000))
        return text.prefix(10) + " " + text.dropFirst(11).prefix(8) + "Z"
    }

    /// `340 ms`, `12.5 s`, `3.2 min`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        return String(format: "%.1f min", seconds / 60)
    }
}
