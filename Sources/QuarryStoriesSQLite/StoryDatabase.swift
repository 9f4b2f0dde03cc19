import CompressNIO
import Foundation
import GRDB
import NIOCore
import QuarryCore

/// The engine's state in one SQLite file (WAL): stories, runs, events, the delivery queue, the run timelines,
/// agents' memory, credentials and resources. Payloads over ``externalThreshold`` bytes live in gzip files under
/// `payloads/`, referenced from their event row.
final class StoryDatabase: Sendable {
    let pool: DatabasePool
    let payloadDirectory: URL
    /// Payloads larger than this are kept out of the event table (a 100,000-hit search is tens of megabytes).
    static let externalThreshold = 256 * 1024

    init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        payloadDirectory = directory.appendingPathComponent("payloads")
        try FileManager.default.createDirectory(at: payloadDirectory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let path = directory.appendingPathComponent("stories.sqlite").path
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.checkNotNewer(pool, path: path)
        try Self.migrator.migrate(pool)
    }

    // MARK: Schema

    /// Every change of the schema, in order; a database carries those applied to it in GRDB's `grdb_migrations`
    /// table. A migration is never edited once released: a change is a new one.
    ///
    /// Data directories written before migrations existed hold the `v1` schema (and `hosts`, added by hand then)
    /// without a migrations table: `v1` creates only what is missing and `v2` adds only a missing column, so such a
    /// directory is adopted as it is.
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS stories(name TEXT PRIMARY KEY, source TEXT NOT NULL, updated REAL NOT NULL);
                    CREATE TABLE IF NOT EXISTS runs(
                        guid TEXT PRIMARY KEY, story TEXT NOT NULL, status TEXT NOT NULL, dry_run INTEGER NOT NULL,
                        started REAL NOT NULL, ended REAL, error TEXT, entry_event INTEGER);
                    CREATE INDEX IF NOT EXISTS runs_story ON runs(story, started);
                    CREATE TABLE IF NOT EXISTS events(
                        id INTEGER PRIMARY KEY, story TEXT NOT NULL, agent TEXT NOT NULL, run TEXT NOT NULL,
                        lineage TEXT NOT NULL, created REAL NOT NULL, expires REAL, payload BLOB, payload_file TEXT,
                        size INTEGER NOT NULL, error INTEGER NOT NULL DEFAULT 0);
                    CREATE INDEX IF NOT EXISTS events_run ON events(run, agent);
                    CREATE INDEX IF NOT EXISTS events_story ON events(story, agent, id);
                    CREATE INDEX IF NOT EXISTS events_expires ON events(expires) WHERE expires IS NOT NULL;
                    CREATE TABLE IF NOT EXISTS deliveries(
                        id INTEGER PRIMARY KEY, event INTEGER NOT NULL, story TEXT NOT NULL, agent TEXT NOT NULL,
                        run TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL,
                        timer TEXT, timer_key TEXT);
                    CREATE INDEX IF NOT EXISTS deliveries_run ON deliveries(run);
                    CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(not_before);
                    CREATE TABLE IF NOT EXISTS timeline(
                        id INTEGER PRIMARY KEY, run TEXT NOT NULL, agent TEXT NOT NULL, event INTEGER,
                        attempt INTEGER NOT NULL, started REAL NOT NULL, ended REAL NOT NULL, outcome TEXT NOT NULL,
                        emitted INTEGER NOT NULL, message TEXT);
                    CREATE INDEX IF NOT EXISTS timeline_run ON timeline(run, id);
                    CREATE TABLE IF NOT EXISTS memory(
                        story TEXT NOT NULL, agent TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                        created REAL NOT NULL);
                    CREATE INDEX IF NOT EXISTS memory_key ON memory(story, agent, key);
                    CREATE TABLE IF NOT EXISTS credentials(name TEXT PRIMARY KEY, sealed BLOB NOT NULL, updated REAL NOT NULL);
                    CREATE TABLE IF NOT EXISTS resources(name TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
                    """
            )
        }
        // The hosts a credential may be sent to (a JSON array; NULL: any).
        migrator.registerMigration("v2-credential-hosts") { db in
            if try !db.columns(in: "credentials").contains(where: { $0.name == "hosts" }) {
                try db.execute(sql: "ALTER TABLE credentials ADD COLUMN hosts TEXT")
            }
        }
        // Delivery ids are never reused (AUTOINCREMENT): the engine knows a delivery by its id while it is claimed or
        // handed off, and a new delivery that took the id of one just removed was taken for it and left waiting.
        migrator.registerMigration("v3-delivery-ids-never-reused") { db in
            try db.execute(
                sql: """
                    CREATE TABLE deliveries_v3(
                        id INTEGER PRIMARY KEY AUTOINCREMENT, event INTEGER NOT NULL, story TEXT NOT NULL,
                        agent TEXT NOT NULL, run TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                        not_before REAL NOT NULL, timer TEXT, timer_key TEXT);
                    INSERT INTO deliveries_v3(id, event, story, agent, run, attempts, not_before, timer, timer_key)
                        SELECT id, event, story, agent, run, attempts, not_before, timer, timer_key FROM deliveries;
                    DROP TABLE deliveries;
                    ALTER TABLE deliveries_v3 RENAME TO deliveries;
                    CREATE INDEX deliveries_run ON deliveries(run);
                    CREATE INDEX deliveries_due ON deliveries(not_before);
                    """
            )
        }
        return migrator
    }()

    /// Refuses a database that a newer Quarry has migrated past this build's schema, before anything reads it.
    private static func checkNotNewer(_ pool: DatabasePool, path: String) throws {
        if try pool.read({ db in try migrator.hasBeenSuperseded(db) }) {
            let newest = migrator.migrations.last ?? ""
            throw StoryDatabaseError(
                "\(path) was written by a newer Quarry: its schema is past '\(newest)', the newest this build knows"
            )
        }
    }

    // MARK: Payloads

    /// An event payload ready to store: inline bytes, or the name of the gzip file it was written to.
    struct StoredPayload {
        var inline: Data?
        var file: String?
        var size: Int
    }

    /// A serialized payload ready to store: inline when it is small, else written to a compressed file first.
    func prepare(_ bytes: [UInt8]) throws -> StoredPayload {
        guard bytes.count > Self.externalThreshold else {
            return StoredPayload(inline: Data(bytes), file: nil, size: bytes.count)
        }
        var buffer = ByteBuffer(bytes: bytes)
        let compressed = try buffer.compress(with: .gzip())
        let name = "\(UUID().uuidString.lowercased()).json.gz"
        try Data(compressed.readableBytesView).write(
            to: payloadDirectory.appendingPathComponent(name),
            options: .atomic
        )
        return StoredPayload(inline: nil, file: name, size: bytes.count)
    }

    /// The payload of an event row.
    func payload(inline: Data?, file: String?) throws -> JSON {
        if let inline { return try JSON.parse(inline) }
        guard let file else { return .null }
        let data = try Data(contentsOf: payloadDirectory.appendingPathComponent(file))
        var buffer = ByteBuffer(bytes: data)
        let bytes = try buffer.decompress(with: .gzip())
        return try JSON.parse(bytes.readableBytesView)
    }

    func removePayloadFile(_ name: String) {
        try? FileManager.default.removeItem(at: payloadDirectory.appendingPathComponent(name))
    }
}

extension Database {
    /// `execute(sql:arguments:)` for one statement, compiled once per connection and reused: the engine runs the
    /// same few statements for every event.
    func cachedExecute(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}

/// The engine's database cannot be used by this build.
struct StoryDatabaseError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
