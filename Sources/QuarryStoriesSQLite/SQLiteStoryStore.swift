public import Foundation
import GRDB
public import NIOPosix
public import QuarryCore
public import QuarryStories

/// The ``StoryStore`` of a data directory: one SQLite file (WAL) with a schema version (see
/// `StoryDatabase.migrator`), and large payloads in gzip files beside it.
///
/// Blocking work stays off Swift's cooperative pool: reads and lone writes run on `threadPool` (NIO's, the process's
/// one pool for blocking work); the writes of the delivery queue, which many workers make at once, run in group
/// commits on the committer's own serial queue (see `GroupCommitter`: SQLite has one writer at a time). The vault's
/// reads are the exception the protocol makes: one row by its primary key, read on the caller's thread while a
/// template renders.
public final class SQLiteStoryStore: StoryStore {
    let database: StoryDatabase
    private let threadPool: NIOThreadPool
    private let commits: GroupCommitter

    /// Opens (or creates, or upgrades) the store in `directory`.
    public init(directory: URL, threadPool: NIOThreadPool = .singleton) throws {
        database = try StoryDatabase(directory: directory)
        self.threadPool = threadPool
        commits = GroupCommitter(pool: database.pool)
    }

    private func read<Result: Sendable>(_ work: @escaping @Sendable (Database) throws -> Result) async throws -> Result
    {
        let pool = database.pool
        return try await threadPool.runIfActive { try pool.read(work) }
    }

    private func write<Result: Sendable>(
        _ work: @escaping @Sendable (Database) throws -> Result
    ) async throws
        -> Result
    {
        let pool = database.pool
        return try await threadPool.runIfActive { try pool.write(work) }
    }

    // MARK: Stories

    public func storedStories() async throws -> [StoredStory] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT name, source FROM stories ORDER BY name").map {
                StoredStory(name: $0["name"], source: $0["source"])
            }
        }
    }

    public func saveStory(_ story: StoredStory, at time: Double) async throws {
        try await write { db in
            try db.cachedExecute(
                sql: "INSERT OR REPLACE INTO stories(name, source, updated) VALUES (?, ?, ?)",
                arguments: [story.name, story.source, time]
            )
        }
    }

    public func removeStory(named name: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM stories WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    // MARK: Runs

    public func startRun(
        _ run: NewRun,
        beforeCommit: @escaping @Sendable (QueuedDelivery) -> Void
    ) async throws
        -> QueuedDelivery
    {
        let stored = try await prepare(run.payload)
        // In a group commit with the deliveries that end meanwhile: runs started together share a transaction.
        return try await commits.write { db in
            try db.cachedExecute(
                sql: "INSERT INTO runs(guid, story, status, dry_run, started) VALUES (?, ?, 'running', ?, ?)",
                arguments: [run.guid, run.story, run.dryRun, run.time]
            )
            // The entry agent receives the starting payload as its input event (emitted by no agent).
            let event = try Self.insertEvent(
                db,
                story: run.story,
                agent: "",
                run: run.guid,
                ancestors: [:],
                payload: stored,
                expires: nil,
                isError: false,
                time: run.time
            )
            try db.cachedExecute(sql: "UPDATE runs SET entry_event = ? WHERE guid = ?", arguments: [event, run.guid])
            try db.cachedExecute(
                sql: "INSERT INTO deliveries(event, story, agent, run, not_before) VALUES (?, ?, ?, ?, ?)",
                arguments: [event, run.story, run.entryAgent, run.guid, run.time]
            )
            let delivery = QueuedDelivery(
                id: db.lastInsertedRowID,
                event: event,
                story: run.story,
                agent: run.entryAgent,
                run: run.guid,
                dryRun: run.dryRun
            )
            beforeCommit(delivery)
            return delivery
        }
    }

    public func recordFailedRun(guid: String, story: String, error: String, at time: Double) async throws {
        try await write { db in
            try db.cachedExecute(
                sql: """
                    INSERT INTO runs(guid, story, status, dry_run, started, ended, error)
                    VALUES (?, ?, 'failed', 0, ?, ?, ?)
                    """,
                arguments: [guid, story, time, time, error]
            )
        }
    }

    public func run(_ guid: String) async throws -> RunRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE guid = ?", arguments: [guid]).map(Self.runRecord)
        }
    }

    public func runs(story: String?, limit: Int) async throws -> [RunRecord] {
        try await read { db in
            if let story {
                return try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM runs WHERE story = ? ORDER BY started DESC LIMIT ?",
                    arguments: [story, limit]
                ).map(Self.runRecord)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM runs ORDER BY started DESC LIMIT ?", arguments: [limit])
                .map(Self.runRecord)
        }
    }

    public func timeline(run guid: String) async throws -> [TimelineEntry] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM timeline WHERE run = ? ORDER BY id", arguments: [guid]).map {
                row in
                TimelineEntry(
                    agent: row["agent"],
                    event: row["event"],
                    attempt: row["attempt"],
                    started: row["started"],
                    ended: row["ended"],
                    outcome: TimelineEntry.Outcome(rawValue: row["outcome"]) ?? .failed,
                    emitted: row["emitted"],
                    message: row["message"]
                )
            }
        }
    }

    public func eventCount(run guid: String) async throws -> Int {
        try await read { db in
            try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM events WHERE run = ? AND agent != ''"),
                arguments: [guid]
            ) ?? 0
        }
    }

    public func events(run guid: String, offset: Int, limit: Int) async throws -> [EventRecord] {
        let database = database
        return try await read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id, agent, run, created, payload, payload_file, error FROM events
                        WHERE run = ? AND agent != '' ORDER BY id LIMIT ? OFFSET ?
                        """
                ),
                arguments: [guid, Int64(clamping: limit), Int64(clamping: offset)]
            ).map { row in
                EventRecord(
                    id: row["id"],
                    agent: row["agent"],
                    run: row["run"],
                    created: row["created"],
                    payload: try database.payload(inline: row["payload"], file: row["payload_file"]),
                    isError: row["error"]
                )
            }
        }
    }

    public func event(_ id: Int64) async throws -> StoredEvent? {
        let database = database
        return try await read { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT agent, lineage, payload, payload_file FROM events WHERE id = ?"),
                    arguments: [id]
                )
            else { return nil }
            var ancestors: [String: Int64] = [:]
            if let object = try JSON.parse(row["lineage"] as String).objectValue {
                for (name, value) in object { if let id = value.intValue { ancestors[name] = id } }
            }
            return StoredEvent(
                agent: row["agent"],
                ancestors: ancestors,
                payload: try database.payload(inline: row["payload"], file: row["payload_file"])
            )
        }
    }

    public func latestEvent(run guid: String, agent: String) async throws -> Int64? {
        try await read { db in
            try Int64.fetchOne(
                db.cachedStatement(
                    sql: "SELECT id FROM events WHERE run = ? AND agent = ? AND error = 0 ORDER BY id DESC LIMIT 1"
                ),
                arguments: [guid, agent]
            )
        }
    }

    static func runRecord(_ row: Row) -> RunRecord {
        RunRecord(
            guid: row["guid"],
            story: row["story"],
            status: RunRecord.Status(rawValue: row["status"]) ?? .failed,
            dryRun: row["dry_run"],
            started: row["started"],
            ended: row["ended"],
            error: row["error"]
        )
    }

    // MARK: The delivery queue

    public func dueDeliveries(at time: Double, limit: Int, excluding: Set<Int64>) async throws -> [QueuedDelivery] {
        try await read { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT d.id, d.event, d.story, d.agent, d.run, d.attempts, d.timer, r.dry_run
                        FROM deliveries d LEFT JOIN runs r ON r.guid = d.run
                        WHERE d.not_before <= ? ORDER BY d.id LIMIT ?
                        """
                ),
                arguments: [time, limit + excluding.count]
            )
            var due: [QueuedDelivery] = []
            for row in rows where due.count < limit {
                let id: Int64 = row["id"]
                if excluding.contains(id) { continue }
                let timer: String? = row["timer"]
                due.append(
                    QueuedDelivery(
                        id: id,
                        event: row["event"],
                        story: row["story"],
                        agent: row["agent"],
                        run: row["run"],
                        attempts: row["attempts"],
                        timer: try timer.map { try JSON.parse($0) },
                        dryRun: row["dry_run"] ?? false
                    )
                )
            }
            return due
        }
    }

    public func nextDueTime(after time: Double) async throws -> Double? {
        try await read { db in
            try Double.fetchOne(
                db.cachedStatement(sql: "SELECT MIN(not_before) FROM deliveries WHERE not_before > ?"),
                arguments: [time]
            )
        }
    }

    public func pendingDeliveryCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries") ?? 0 }
    }

    public func complete(
        _ completion: DeliveryCompletion,
        beforeCommit: @escaping @Sendable ([QueuedDelivery]) -> Void
    ) async throws -> CompletedDelivery {
        // Large payloads are written to their files before the transaction, so that it stays short; a crash in
        // between leaves only an unreferenced file.
        var prepared: [StoryDatabase.StoredPayload] = []
        for event in completion.events { prepared.append(try await prepare(event)) }
        let delivery = completion.delivery
        return try await commits.write { [prepared] db in
            var emitted: [Int64] = []
            var due: [QueuedDelivery] = []
            for stored in prepared {
                let id = try Self.insertEvent(
                    db,
                    story: delivery.story,
                    agent: delivery.agent,
                    run: delivery.run,
                    ancestors: completion.ancestors,
                    payload: stored,
                    expires: completion.expires,
                    isError: false,
                    time: completion.time
                )
                emitted.append(id)
                for receiver in completion.receivers {
                    try db.cachedExecute(
                        sql: "INSERT INTO deliveries(event, story, agent, run, not_before) VALUES (?, ?, ?, ?, ?)",
                        arguments: [id, delivery.story, receiver, delivery.run, completion.deliverAt]
                    )
                    if completion.deliverAt <= completion.time {
                        due.append(
                            QueuedDelivery(
                                id: db.lastInsertedRowID,
                                event: id,
                                story: delivery.story,
                                agent: receiver,
                                run: delivery.run,
                                dryRun: delivery.dryRun
                            )
                        )
                    }
                }
            }
            for timer in completion.timers {
                try db.cachedExecute(
                    sql: """
                        INSERT INTO deliveries(event, story, agent, run, not_before, timer, timer_key)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        delivery.event, delivery.story, delivery.agent, delivery.run, timer.at,
                        timer.payload.serialized(), timer.key,
                    ]
                )
            }
            for key in completion.cancelledTimers {
                try db.cachedExecute(
                    sql: "DELETE FROM deliveries WHERE run = ? AND agent = ? AND timer_key = ? AND id != ?",
                    arguments: [delivery.run, delivery.agent, key, delivery.id]
                )
            }
            try db.cachedExecute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery.id])
            try Self.insertStep(db, completion.step, run: delivery.run)
            let finished = try Self.finishRunIfDone(
                db,
                run: delivery.run,
                terminalAgents: completion.terminalAgents,
                time: completion.time
            )
            beforeCommit(due)
            return CompletedDelivery(emitted: emitted, due: due, finishedRun: finished)
        }
    }

    public func retry(_ delivery: QueuedDelivery, notBefore: Double, step: TimelineEntry) async throws {
        try await commits.write { db in
            try db.cachedExecute(
                sql: "UPDATE deliveries SET attempts = attempts + 1, not_before = ? WHERE id = ?",
                arguments: [notBefore, delivery.id]
            )
            try Self.insertStep(db, step, run: delivery.run)
        }
    }

    public func fail(_ failure: DeliveryFailure) async throws -> RunRecord? {
        let stored = try await prepare(failure.error)
        let delivery = failure.delivery
        return try await commits.write { db in
            _ = try Self.insertEvent(
                db,
                story: delivery.story,
                agent: delivery.agent,
                run: delivery.run,
                ancestors: [:],
                payload: stored,
                expires: nil,
                isError: true,
                time: failure.time
            )
            try db.cachedExecute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery.id])
            try Self.insertStep(db, failure.step, run: delivery.run)
            try db.cachedExecute(
                sql: "UPDATE runs SET error = COALESCE(error, ?) WHERE guid = ?",
                arguments: [failure.runError, delivery.run]
            )
            return try Self.finishRunIfDone(
                db,
                run: delivery.run,
                terminalAgents: failure.terminalAgents,
                time: failure.time
            )
        }
    }

    /// `payload` ready to store; a large one is written to its file on the thread pool, before the transaction
    /// that stores its event, so that the transaction stays short (a crash in between leaves only an unreferenced
    /// file).
    private func prepare(_ payload: JSON) async throws -> StoryDatabase.StoredPayload {
        let bytes = payload.serializedBytes()
        let database = database
        if bytes.count <= StoryDatabase.externalThreshold { return try database.prepare(bytes) }
        return try await threadPool.runIfActive { try database.prepare(bytes) }
    }

    private static func insertEvent(
        _ db: Database,
        story: String,
        agent: String,
        run: String,
        ancestors: [String: Int64],
        payload: StoryDatabase.StoredPayload,
        expires: Double?,
        isError: Bool,
        time: Double
    ) throws -> Int64 {
        var lineage = JSONObject()
        for (name, event) in ancestors.sorted(by: { $0.key < $1.key }) { lineage[name] = .int(event) }
        try db.cachedExecute(
            sql: """
                INSERT INTO events(story, agent, run, lineage, created, expires, payload, payload_file, size, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                story, agent, run, JSON.object(lineage).serialized(), time, expires, payload.inline, payload.file,
                payload.size, isError,
            ]
        )
        return db.lastInsertedRowID
    }

    private static func insertStep(_ db: Database, _ step: TimelineEntry, run: String) throws {
        try db.cachedExecute(
            sql: """
                INSERT INTO timeline(run, agent, event, attempt, started, ended, outcome, emitted, message)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                run, step.agent, step.event, step.attempt, step.started, step.ended, step.outcome.rawValue,
                step.emitted, step.message,
            ]
        )
    }

    /// Ends the run when nothing of it is pending (see ``RunRecord/finalStatus(anyStepFailed:emittingAgents:terminalAgents:)``).
    private static func finishRunIfDone(
        _ db: Database,
        run: String,
        terminalAgents: Set<String>,
        time: Double
    ) throws
        -> RunRecord?
    {
        let pending =
            try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM deliveries WHERE run = ?"), arguments: [run])
            ?? 0
        guard pending == 0 else { return nil }
        let failed =
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS(SELECT 1 FROM timeline WHERE run = ? AND outcome = 'failed')",
                arguments: [run]
            ) ?? false
        let emitting = try String.fetchAll(
            db,
            sql: "SELECT DISTINCT agent FROM events WHERE run = ? AND error = 0 AND agent != ''",
            arguments: [run]
        )
        let status = RunRecord.finalStatus(
            anyStepFailed: failed,
            emittingAgents: Set(emitting),
            terminalAgents: terminalAgents
        )
        try db.cachedExecute(
            sql: "UPDATE runs SET status = ?, ended = ? WHERE guid = ? AND status = 'running'",
            arguments: [status.rawValue, time, run]
        )
        return try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE guid = ?", arguments: [run]).map(runRecord)
    }

    // MARK: Retention

    public func removeEvents(expiredBefore time: Double, maximumEvents: [String: Int]) async throws -> Int {
        let (removed, files) = try await write { db -> (Int, [String]) in
            var doomed = try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM events WHERE expires IS NOT NULL AND expires < ?
                    AND id NOT IN (SELECT event FROM deliveries)
                    """,
                arguments: [time]
            )
            for (story, limit) in maximumEvents where limit > 0 {
                doomed += try Int64.fetchAll(
                    db,
                    sql: """
                        SELECT id FROM events WHERE story = ? AND id NOT IN (SELECT event FROM deliveries)
                        ORDER BY id DESC LIMIT -1 OFFSET ?
                        """,
                    arguments: [story, limit]
                )
            }
            doomed = Array(Set(doomed))
            guard !doomed.isEmpty else { return (0, []) }
            var files: [String] = []
            for chunk in stride(from: 0, to: doomed.count, by: 500) {
                let list = doomed[chunk..<min(chunk + 500, doomed.count)].map(String.init).joined(separator: ",")
                files += try String.fetchAll(
                    db,
                    sql: "SELECT payload_file FROM events WHERE id IN (\(list)) AND payload_file IS NOT NULL"
                )
                try db.execute(sql: "DELETE FROM events WHERE id IN (\(list))")
            }
            return (doomed.count, files)
        }
        for file in files { database.removePayloadFile(file) }
        return removed
    }

    // MARK: Agents' memory

    public func appendMemory(
        _ value: JSON,
        story: String,
        agent: String,
        key: String,
        at time: Double
    ) async throws
        -> [JSON]
    {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO memory(story, agent, key, value, created) VALUES (?, ?, ?, ?, ?)",
                arguments: [story, agent, key, value.serialized(), time]
            )
            return try String.fetchAll(
                db,
                sql: "SELECT value FROM memory WHERE story = ? AND agent = ? AND key = ? ORDER BY rowid",
                arguments: [story, agent, key]
            ).map { try JSON.parse($0) }
        }
    }

    public func takeMemory(story: String, agent: String, key: String) async throws -> [JSON] {
        try await write { db in
            let values = try String.fetchAll(
                db,
                sql: "SELECT value FROM memory WHERE story = ? AND agent = ? AND key = ? ORDER BY rowid",
                arguments: [story, agent, key]
            ).map { try JSON.parse($0) }
            try db.execute(
                sql: "DELETE FROM memory WHERE story = ? AND agent = ? AND key = ?",
                arguments: [story, agent, key]
            )
            return values
        }
    }

    public func rememberKey(
        _ key: String,
        story: String,
        agent: String,
        lookback: Int,
        at time: Double
    ) async throws
        -> Bool
    {
        try await write { db in
            let found =
                try Bool.fetchOne(
                    db,
                    sql: """
                        SELECT EXISTS(SELECT 1 FROM (SELECT key FROM memory WHERE story = ? AND agent = ?
                        ORDER BY rowid DESC LIMIT ?) WHERE key = ?)
                        """,
                    arguments: [story, agent, lookback, key]
                ) ?? false
            try db.execute(
                sql: "INSERT INTO memory(story, agent, key, value, created) VALUES (?, ?, ?, 'null', ?)",
                arguments: [story, agent, key, time]
            )
            try db.execute(
                sql: """
                    DELETE FROM memory WHERE story = ? AND agent = ? AND rowid NOT IN
                    (SELECT rowid FROM memory WHERE story = ? AND agent = ? ORDER BY rowid DESC LIMIT ?)
                    """,
                arguments: [story, agent, story, agent, lookback]
            )
            return found
        }
    }

    // MARK: The vault

    public func sealedCredential(_ name: String) throws -> SealedCredential? {
        try database.pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT sealed, hosts FROM credentials WHERE name = ?",
                    arguments: [name]
                )
            else { return nil }
            let hosts = (row["hosts"] as String?).flatMap { try? JSON.parse($0).arrayValue }
            return SealedCredential(name: name, sealed: row["sealed"], allowedHosts: hosts?.compactMap(\.stringValue))
        }
    }

    public func saveSealedCredential(_ credential: SealedCredential, at time: Double) throws {
        let hosts = credential.allowedHosts.map { JSON.array($0.map { .string($0) }).serialized() }
        try database.pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO credentials(name, sealed, updated, hosts) VALUES (?, ?, ?, ?)",
                arguments: [credential.name, credential.sealed, time, hosts]
            )
        }
    }

    public func credentialNames() throws -> [String] { try names(in: "credentials") }

    public func removeCredential(_ name: String) throws -> Bool { try remove(name, from: "credentials") }

    public func resource(_ name: String) throws -> String? {
        try database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM resources WHERE name = ?", arguments: [name])
        }
    }

    public func saveResource(_ name: String, value: String, at time: Double) throws {
        try database.pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO resources(name, value, updated) VALUES (?, ?, ?)",
                arguments: [name, value, time]
            )
        }
    }

    public func resourceNames() throws -> [String] { try names(in: "resources") }

    public func removeResource(_ name: String) throws -> Bool { try remove(name, from: "resources") }

    /// The names of the vault's `table` (credentials or resources), sorted.
    private func names(in table: String) throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM \(table) ORDER BY name") }
    }

    /// Removes row `name` of the vault's `table`; whether there was one.
    private func remove(_ name: String, from table: String) throws -> Bool {
        try database.pool.write { db in
            try db.execute(sql: "DELETE FROM \(table) WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }
}
