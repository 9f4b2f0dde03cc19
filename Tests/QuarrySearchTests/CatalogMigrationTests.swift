import Foundation
import GRDB
import QuarryCore
import QuarrySearch
import QuarryTesting
import Testing

/// A store whose catalog was written before the catalog had migrations is adopted with its templates, its cluster
/// id and every document; one written by a newer Quarry is refused.
@Suite(.mayBlock)
struct CatalogMigrationTests {
    /// The catalog as every release before migrations wrote it, kept verbatim.
    static let catalogBeforeMigrations = """
        CREATE TABLE templates(name TEXT PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """

    @Test func aCatalogFromBeforeMigrationsIsAdopted() async throws {
        try await withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let template: JSON = [
                "index_patterns": ["logs-*"], "template": ["mappings": ["properties": ["host": ["type": "keyword"]]]],
            ]
            let catalog = try DatabaseQueue(path: directory.appendingPathComponent("catalog.sqlite").path)
            try catalog.write { db in
                try db.execute(sql: Self.catalogBeforeMigrations)
                try db.execute(sql: "INSERT INTO settings(key, value) VALUES ('cluster_uuid', 'old-cluster-uuid')")
                try db.execute(
                    sql: "INSERT INTO templates(name, body) VALUES ('logs', ?)",
                    arguments: [template.serialized()]
                )
            }
            try catalog.close()

            let configuration = EmbeddedStore.Configuration(dataDirectory: directory)
            do {
                let store = try EmbeddedStore(configuration: configuration)
                #expect(store.clusterUUID == "old-cluster-uuid")
                #expect(store.templates().map(\.name) == ["logs"])
                let document: JSON = ["host": "web-1"]
                _ = try store.write(
                    index: "logs-1",
                    .index(IndexRequest(id: "1", source: document.serializedBytes(), document: document))
                )
                try store.close()
            }
            let reopened = try EmbeddedStore(configuration: configuration)
            defer { try? reopened.close() }
            #expect(reopened.clusterUUID == "old-cluster-uuid")
            #expect(try reopened.count("logs-1", query: Query.parse(["term": ["host": "web-1"]])) == 1)
        }
    }

    @Test func aCatalogFromANewerQuarryIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory)
            try EmbeddedStore(configuration: configuration).close()
            let catalog = try DatabaseQueue(path: directory.appendingPathComponent("catalog.sqlite").path)
            try catalog.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations(identifier) VALUES ('v99-from-the-future')")
            }
            try catalog.close()
            #expect {
                try EmbeddedStore(configuration: configuration).close()
            } throws: {
                "\($0)".contains("written by a newer Quarry")
            }
        }
    }
}
