import NIOConcurrencyHelpers

/// Slows down repeated authentication failures for one user, API key or client address: after a few free failures
/// in a window, each further attempt waits, twice as long each time up to a maximum, before it is checked. The
/// server waits without holding a thread, and a password guesser gets a few attempts a second at most instead of
/// thousands. A success for a user forgets that user's failures (not the address's).
///
/// Memory is bounded: at most `maximumTracked` keys, the stalest dropped first.
public final class LoginThrottle: Sendable {
    public struct Configuration: Sendable {
        /// Failures within `window` before attempts are slowed down.
        public var freeFailures: Int
        public var window: Duration
        public var baseDelay: Duration
        public var maximumDelay: Duration
        public var maximumTracked: Int

        public init(
            freeFailures: Int = 5,
            window: Duration = .seconds(300),
            baseDelay: Duration = .milliseconds(250),
            maximumDelay: Duration = .seconds(5),
            maximumTracked: Int = 10_000
        ) {
            self.freeFailures = freeFailures
            self.window = window
            self.baseDelay = baseDelay
            self.maximumDelay = maximumDelay
            self.maximumTracked = maximumTracked
        }
    }

    private struct Failures {
        var count: Int
        var first: ContinuousClock.Instant
        var last: ContinuousClock.Instant
    }

    public let configuration: Configuration
    private let failures = NIOLockedValueBox([String: Failures]())

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// How long an attempt for these keys (`user:NAME`, `key:ID`, `address:IP`) waits before it is checked.
    public func delay(for keys: [String]) -> Duration {
        let now = ContinuousClock.now
        let count = failures.withLockedValue { table in
            keys.compactMap { key -> Int? in
                guard let entry = table[key], entry.first.duration(to: now) < configuration.window else { return nil }
                return entry.count
            }.max() ?? 0
        }
        let excess = count - configuration.freeFailures
        guard excess >= 0 else { return .zero }
        let factor = 1 << min(excess, 20)
        return min(configuration.baseDelay * factor, configuration.maximumDelay)
    }

    /// Records a failure for each key; returns the largest count, for the log.
    @discardableResult
    public func recordFailure(_ keys: [String]) -> Int {
        let now = ContinuousClock.now
        return failures.withLockedValue { table in
            var largest = 0
            for key in keys {
                var entry = table[key] ?? Failures(count: 0, first: now, last: now)
                if entry.first.duration(to: now) >= configuration.window {
                    entry = Failures(count: 0, first: now, last: now)
                }
                entry.count += 1
                entry.last = now
                table[key] = entry
                largest = max(largest, entry.count)
            }
            if table.count > configuration.maximumTracked {
                table = table.filter { $0.value.first.duration(to: now) < configuration.window }
                if table.count > configuration.maximumTracked {
                    let keep = table.sorted { $0.value.last > $1.value.last }.prefix(configuration.maximumTracked / 2)
                    table = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            return largest
        }
    }

    public func recordSuccess(_ key: String) {
        _ = failures.withLockedValue { $0.removeValue(forKey: key) }
    }

    /// How many keys are tracked (for tests of the bound).
    public var trackedCount: Int { failures.withLockedValue { $0.count } }
}
