import AsyncHTTPClient
import Foundation
import GRDB
import QuarryAgents
import QuarryCore
import QuarryStories
import QuarryStoriesSQLite
import QuarryTesting
import Testing

/// Data directories written before the engine's database had migrations are adopted without losing a story, a
/// run, an event, a credential or a resource; one written by a newer Quarry is refused before anything reads it.
@Suite(.mayBlock)
struct SchemaMigrationTests {
    /// The schema of `stories.sqlite` as every release before migrations wrote it (the `hosts` column was added
    /// by hand at open), kept here verbatim so that the test builds such a directory itself.
    static let schemaBeforeMigrations = """
        CREATE TABLE stories(name TEXT PRIMARY KEY, source TEXT NOT NULL, updated REAL NOT NULL);
        CREATE TABLE runs(
            guid TEXT PRIMARY KEY, story TEXT NOT NULL, status TEXT NOT NULL, dry_run INTEGER NOT NULL,
            started REAL NOT NULL, ended REAL, error TEXT, entry_event INTEGER);
        CREATE INDEX runs_story ON runs(story, started);
        CREATE TABLE events(
            id INTEGER PRIMARY KEY, story TEXT NOT NULL, agent TEXT NOT NULL, run TEXT NOT NULL,
            lineage TEXT NOT NULL, created REAL NOT NULL, expires REAL, payload BLOB, payload_file TEXT,
            size INTEGER NOT NULL, error INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX events_run ON events(run, agent);
        CREATE INDEX events_story ON events(story, agent, id);
        CREATE INDEX events_expires ON events(expires) WHERE expires IS NOT NULL;
        CREATE TABLE deliveries(
            id INTEGER PRIMARY KEY, event INTEGER NOT NULL, story TEXT NOT NULL, agent TEXT NOT NULL,
            run TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL,
            timer TEXT, timer_key TEXT);
        CREATE INDEX deliveries_run ON deliveries(run);
        CREATE INDEX deliveries_due ON deliveries(not_before);
        CREATE TABLE timeline(
            id INTEGER PRIMARY KEY, run TEXT NOT NULL, agent TEXT NOT NULL, event INTEGER,
            attempt INTEGER NOT NULL, started REAL NOT NULL, ended REAL NOT NULL, outcome TEXT NOT NULL,
            emitted INTEGER NOT NULL, message TEXT);
        CREATE INDEX timeline_run ON timeline(run, id);
        CREATE TABLE memory(
            story TEXT NOT NULL, agent TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL);
        CREATE INDEX memory_key ON memory(story, agent, key);
        CREATE TABLE credentials(name TEXT PRIMARY KEY, sealed BLOB NOT NULL, updated REAL NOT NULL, hosts TEXT);
        CREATE TABLE resources(name TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
        """

    static let story = """
        {"name": "Old hunt", "agents": [{"name": "Start", "type": "webhook", "options": {"secret": "s3cr3t-old-hunt-0123"}}]}
        """

    func engine(_ directory: URL, key: String) async throws -> StoryEngine<ContinuousClock> {
        try await StoryEngine(
            directory: directory,
            environment: ["QUARRY_SECRET_KEY": key],
            services: AgentServices(BuiltInServices(httpClient: .shared)),
            agents: .builtIn
        )
    }

    @Test func aDirectoryFromBeforeMigrationsIsAdoptedWithEverythingInIt() async throws {
        try await withTemporaryDirectory { root in
            let key = Data((0..<32).map { UInt8($0) }).base64EncodedString()
            // A credential sealed by the vault itself (in a directory of its own), so that the test does not
            // repeat the vault's format.
            let helper = try await engine(root.appendingPathComponent("helper"), key: key)
            try helper.vault.setCredential("es", value: "id:very-secret-key", allowedHosts: ["es.example"])
            let sealed = try await DatabaseQueue(path: root.appendingPathComponent("helper/stories.sqlite").path).read {
                db in
                try Data.fetchOne(db, sql: "SELECT sealed FROM credentials WHERE name = 'es'")
            }

            let old = root.appendingPathComponent("old")
            try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
            let database = try DatabaseQueue(path: old.appendingPathComponent("stories.sqlite").path)
            try await database.write { db in
                try db.execute(sql: Self.schemaBeforeMigrations)
                try db.execute(
                    sql: "INSERT INTO stories(name, source, updated) VALUES ('Old hunt', ?, 1.0)",
                    arguments: [Self.story]
                )
                try db.execute(
                    sql: """
                        INSERT INTO runs(guid, story, status, dry_run, started, ended) VALUES
                            ('run-1', 'Old hunt', 'succeeded', 0, 1764400000.0, 1764400001.0)
                        """
                )
                try db.execute(
                    sql: """
                        INSERT INTO events(story, agent, run, lineage, created, payload, size) VALUES
                            ('Old hunt', 'start', 'run-1', '{}', 1764400000.5, ?, 17)
                        """,
                    arguments: [Data(#"{"domain":"x.org"}"#.utf8)]
                )
                try db.execute(
                    sql:
                        "INSERT INTO credentials(name, sealed, updated, hosts) VALUES ('es', ?, 1.0, '[\"es.example\"]')",
                    arguments: [sealed]
                )
                try db.execute(
                    sql:
                        "INSERT INTO resources(name, value, updated) VALUES ('recipients', '[\"soc@example.org\"]', 1.0)"
                )
                // A delivery still waiting, due in the future so that nothing performs it during the test.
                try db.execute(
                    sql: """
                        INSERT INTO deliveries(id, event, story, agent, run, not_before)
                            VALUES (7, 1, 'Old hunt', 'start', 'run-1', 4102444800.0)
                        """
                )
            }
            try database.close()

            let adopted = try await engine(old, key: key)
            #expect(adopted.storyNames == ["Old hunt"])
            #expect(try await adopted.run("run-1")?.status == .succeeded)
            #expect(try await adopted.events(run: "run-1").map(\.payload) == [["domain": "x.org"]])
            #expect(try adopted.vault.credential("es") == "id:very-secret-key")
            #expect(try adopted.vault.allowedHosts("es") == ["es.example"])
            #expect(try adopted.vault.resource("recipients") == ["soc@example.org"])
            let applied = try await DatabaseQueue(path: old.appendingPathComponent("stories.sqlite").path).read { db in
                try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
            }
            #expect(applied == ["v1", "v2-credential-hosts", "v3-delivery-ids-never-reused"])
            // The waiting delivery kept its id; a new one never takes a removed one's.
            #expect(try await adopted.pendingDeliveries() == 1)
            let ids = try await DatabaseQueue(path: old.appendingPathComponent("stories.sqlite").path).read { db in
                (
                    try Int64.fetchAll(db, sql: "SELECT id FROM deliveries"),
                    try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'deliveries'") ?? ""
                )
            }
            #expect(ids.0 == [7])
            #expect(ids.1.contains("AUTOINCREMENT"))

            // Opening it again changes nothing.
            let again = try await engine(old, key: key)
            #expect(try await again.events(run: "run-1").count == 1)
        }
    }

    @Test func aDirectoryFromANewerQuarryIsRefused() async throws {
        try await withTemporaryDirectory { root in
            let key = Data((0..<32).map { UInt8($0 + 1) }).base64EncodedString()
            _ = try await engine(root, key: key)
            let database = try DatabaseQueue(path: root.appendingPathComponent("stories.sqlite").path)
            try await database.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations(identifier) VALUES ('v99-from-the-future')")
            }
            try database.close()
            await #expect {
                _ = try await engine(root, key: key)
            } throws: {
                "\($0)".contains("written by a newer Quarry")
            }
        }
    }
}
