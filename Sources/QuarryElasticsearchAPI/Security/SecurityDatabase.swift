import Foundation
import GRDB
import NIOConcurrencyHelpers
import QuarryCore
import QuarrySearch

/// A user of the native realm, as stored: the password only as a bcrypt hash.
struct UserRecord: Sendable, Equatable {
    var username: String
    var passwordHash: String
    var roles: [String]
    var fullName: String?
    var email: String?
    var metadata: JSONObject
    var enabled: Bool
}

/// An API key, as stored: the secret only as a bcrypt hash; the owner's role descriptors at creation (or last
/// update) as `limitedBy`, as Elasticsearch snapshots them.
struct APIKeyRecord: Sendable, Equatable {
    var id: String
    var name: String?
    var secretHash: String
    var owner: String
    var realm: String
    /// Milliseconds since the epoch.
    var created: Int64
    var expiration: Int64?
    var invalidated: Int64?
    var roleDescriptors: [(String, RoleDescriptor)]
    var limitedBy: [(String, RoleDescriptor)]
    var metadata: JSONObject

    static func == (a: APIKeyRecord, b: APIKeyRecord) -> Bool {
        a.id == b.id && a.name == b.name && a.secretHash == b.secretHash && a.owner == b.owner
            && a.realm == b.realm && a.created == b.created && a.expiration == b.expiration
            && a.invalidated == b.invalidated && a.roleDescriptors.map(\.0) == b.roleDescriptors.map(\.0)
            && a.roleDescriptors.map(\.1) == b.roleDescriptors.map(\.1) && a.limitedBy.map(\.0) == b.limitedBy.map(\.0)
            && a.limitedBy.map(\.1) == b.limitedBy.map(\.1) && a.metadata == b.metadata
    }
}

extension APIKeyRecord {
    /// The key as the get and query API key APIs list it (never its secret).
    func json(withLimitedBy: Bool) -> JSON {
        var object: JSONObject = [
            "id": .string(id),
            "name": name.map { .string($0) } ?? .null,
            "type": "rest",
            "creation": .int(created),
        ]
        if let expiration { object["expiration"] = .int(expiration) }
        object["invalidated"] = .bool(invalidated != nil)
        if let invalidated { object["invalidation"] = .int(invalidated) }
        object["username"] = .string(owner)
        object["realm"] = .string(realm)
        object["metadata"] = .object(metadata)
        var descriptors = JSONObject()
        for (name, descriptor) in roleDescriptors { descriptors[name] = descriptor.json }
        object["role_descriptors"] = .object(descriptors)
        if withLimitedBy {
            var limited = JSONObject()
            for (name, descriptor) in limitedBy { limited[name] = descriptor.json }
            object["limited_by"] = [.object(limited)]
        }
        return .object(object)
    }
}

/// An access or refresh token (`POST /_security/oauth2/token`), known by the SHA-256 of its value.
struct TokenRecord: Sendable, Equatable {
    var hash: String
    /// `access` or `refresh` (Elasticsearch's), `session` (a web sign-in) or `user_api` (a user's web API token).
    var kind: String
    var username: String
    var created: Int64
    var expiration: Int64
    var invalidated: Int64?
    /// The other token of the pair: the refresh token's hash for an access token, and the reverse.
    var pair: String?
}

/// An application privilege (`PUT /_security/privilege`): a name for a set of actions of an application.
struct ApplicationPrivilegeRecord: Sendable, Equatable {
    var application: String
    var name: String
    var actions: [String]
    var metadata: JSONObject
}

/// The security index: users, roles, API keys and application privileges in `security.sqlite` of the data
/// directory (Elasticsearch keeps them in its `.security` index). Other processes (`quarry users …`) may write the
/// same file; ``changeVersion()`` tells the server that something changed so that its caches are dropped.
final class SecurityDatabase: Sendable {
    private let queue: DatabaseQueue
    /// Bumped by every write of this process (SQLite's `data_version` counts only other connections' commits).
    private let localChanges = NIOLockedValueBox(0)

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users(
                        username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, roles TEXT NOT NULL,
                        full_name TEXT, email TEXT, metadata TEXT NOT NULL, enabled INTEGER NOT NULL);
                    CREATE TABLE roles(name TEXT PRIMARY KEY, descriptor TEXT NOT NULL);
                    CREATE TABLE api_keys(
                        id TEXT PRIMARY KEY, name TEXT, secret_hash TEXT NOT NULL, owner TEXT NOT NULL,
                        realm TEXT NOT NULL, created INTEGER NOT NULL, expiration INTEGER, invalidated INTEGER,
                        role_descriptors TEXT NOT NULL, limited_by TEXT NOT NULL, metadata TEXT NOT NULL);
                    CREATE INDEX api_keys_owner ON api_keys(owner);
                    CREATE INDEX api_keys_name ON api_keys(name);
                    CREATE TABLE application_privileges(
                        application TEXT NOT NULL, name TEXT NOT NULL, actions TEXT NOT NULL, metadata TEXT NOT NULL,
                        PRIMARY KEY(application, name));
                    """
            )
        }
        migrator.registerMigration("v2-tokens") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tokens(
                        hash TEXT PRIMARY KEY, kind TEXT NOT NULL, username TEXT NOT NULL, created INTEGER NOT NULL,
                        expiration INTEGER NOT NULL, invalidated INTEGER, pair TEXT);
                    CREATE INDEX tokens_username ON tokens(username);
                    """
            )
        }
        return migrator
    }()

    /// Opens (creating if needed) `security.sqlite` in `directory`, readable by its owner only.
    init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("security.sqlite").path
        var configuration = GRDB.Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(10)
        // SQLite gives its -wal and -shm files the database file's mode, so the file is made 0600 before SQLite
        // opens it (and a file an older Quarry made is narrowed).
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        if try queue.read({ db in try Self.migrator.hasBeenSuperseded(db) }) {
            throw StoreError.internalFailure(
                "\(path) was written by a newer Quarry: its schema is past '\(Self.migrator.migrations.last ?? "")'"
            )
        }
        try Self.migrator.migrate(queue)
    }

    /// Counts this process's writes: a cache of what the database says is stale once it moves.
    var localVersion: Int { localChanges.withLockedValue { $0 } }

    /// SQLite's `data_version`: it moves when another process (`quarry users …`) commits to the file.
    func externalVersion() -> Int {
        ((try? queue.read { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }) ?? nil) ?? 0
    }

    private func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            let result = try queue.write(body)
            localChanges.withLockedValue { $0 += 1 }
            return result
        } catch let error as StoreError {
            throw error
        } catch {
            throw .internalFailure("the security index could not be written: \(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try queue.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .internalFailure("the security index could not be read: \(error)")
        }
    }

    // MARK: Users

    func user(_ username: String) throws(StoreError) -> UserRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]) }
            .map(Self.user)
    }

    func users() throws(StoreError) -> [UserRecord] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY username") }.map(Self.user)
    }

    private static func user(_ row: Row) -> UserRecord {
        UserRecord(
            username: row["username"],
            passwordHash: row["password_hash"],
            roles: (try? JSON.parse(row["roles"] as String))?.arrayValue?.compactMap(\.stringValue) ?? [],
            fullName: row["full_name"],
            email: row["email"],
            metadata: (try? JSON.parse(row["metadata"] as String))?.objectValue ?? [:],
            enabled: row["enabled"]
        )
    }

    /// Inserts or replaces a user; true when it was created.
    @discardableResult
    func putUser(_ user: UserRecord) throws(StoreError) -> Bool {
        try write { db in
            let existed =
                try Bool.fetchOne(
                    db,
                    sql: "SELECT 1 FROM users WHERE username = ?",
                    arguments: [user.username]
                ) ?? false
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO users(username, password_hash, roles, full_name, email, metadata, enabled)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    user.username, user.passwordHash, JSON.array(user.roles.map { .string($0) }).serialized(),
                    user.fullName, user.email, JSON.object(user.metadata).serialized(), user.enabled,
                ]
            )
            return !existed
        }
    }

    func deleteUser(_ username: String) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM users WHERE username = ?", arguments: [username])
            return db.changesCount > 0
        }
    }

    // MARK: Roles

    func role(_ name: String) throws(StoreError) -> RoleDescriptor? {
        try read { db in try String.fetchOne(db, sql: "SELECT descriptor FROM roles WHERE name = ?", arguments: [name])
        }
        .flatMap { Self.descriptor($0, name: name) }
    }

    func roles() throws(StoreError) -> [(String, RoleDescriptor)] {
        try read { db in try Row.fetchAll(db, sql: "SELECT name, descriptor FROM roles ORDER BY name") }
            .compactMap { row in
                let name: String = row["name"]
                return Self.descriptor(row["descriptor"], name: name).map { (name, $0) }
            }
    }

    private static func descriptor(_ text: String, name: String) -> RoleDescriptor? {
        guard let json = try? JSON.parse(text) else { return nil }
        return try? RoleDescriptor(stored: json, role: name)
    }

    @discardableResult
    func putRole(_ name: String, _ descriptor: RoleDescriptor) throws(StoreError) -> Bool {
        try write { db in
            let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM roles WHERE name = ?", arguments: [name]) ?? false
            try db.execute(
                sql: "INSERT OR REPLACE INTO roles(name, descriptor) VALUES (?, ?)",
                arguments: [name, descriptor.json.serialized()]
            )
            return !existed
        }
    }

    func deleteRole(_ name: String) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM roles WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    // MARK: API keys

    func apiKey(_ id: String) throws(StoreError) -> APIKeyRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id]) }
            .map(Self.apiKey)
    }

    func apiKeys() throws(StoreError) -> [APIKeyRecord] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM api_keys ORDER BY created, id") }.map(Self.apiKey)
    }

    private static func apiKey(_ row: Row) -> APIKeyRecord {
        APIKeyRecord(
            id: row["id"],
            name: row["name"],
            secretHash: row["secret_hash"],
            owner: row["owner"],
            realm: row["realm"],
            created: row["created"],
            expiration: row["expiration"],
            invalidated: row["invalidated"],
            roleDescriptors: descriptors(row["role_descriptors"]),
            limitedBy: descriptors(row["limited_by"]),
            metadata: (try? JSON.parse(row["metadata"] as String))?.objectValue ?? [:]
        )
    }

    private static func descriptors(_ text: String) -> [(String, RoleDescriptor)] {
        guard let object = (try? JSON.parse(text))?.objectValue else { return [] }
        return object.compactMap { name, json in (try? RoleDescriptor(stored: json, role: name)).map { (name, $0) } }
    }

    static func serialize(_ descriptors: [(String, RoleDescriptor)]) -> String {
        var object = JSONObject()
        for (name, descriptor) in descriptors { object[name] = descriptor.json }
        return JSON.object(object).serialized()
    }

    func putAPIKey(_ key: APIKeyRecord) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO api_keys(id, name, secret_hash, owner, realm, created, expiration,
                        invalidated, role_descriptors, limited_by, metadata)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    key.id, key.name, key.secretHash, key.owner, key.realm, key.created, key.expiration,
                    key.invalidated, Self.serialize(key.roleDescriptors), Self.serialize(key.limitedBy),
                    JSON.object(key.metadata).serialized(),
                ]
            )
        }
    }

    /// Marks the keys invalidated at `time`; returns the ids newly invalidated and those already invalid.
    func invalidateAPIKeys(
        _ ids: [String],
        at time: Int64
    ) throws(StoreError) -> (invalidated: [String], previously: [String]) {
        try write { db in
            var invalidated: [String] = []
            var previously: [String] = []
            for id in ids {
                guard
                    let state = try Row.fetchOne(
                        db,
                        sql: "SELECT invalidated FROM api_keys WHERE id = ?",
                        arguments: [id]
                    )
                else { continue }
                if (state["invalidated"] as Int64?) != nil {
                    previously.append(id)
                } else {
                    try db.execute(sql: "UPDATE api_keys SET invalidated = ? WHERE id = ?", arguments: [time, id])
                    invalidated.append(id)
                }
            }
            return (invalidated, previously)
        }
    }

    // MARK: Tokens

    /// Stores a token by the SHA-256 of its value (tokens are random and long: a hash that cannot be reversed
    /// suffices, no bcrypt).
    func putToken(_ token: TokenRecord) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO tokens(hash, kind, username, created, expiration, invalidated, pair)
                    VALUES (?, ?, ?, ?, ?, NULL, ?)
                    """,
                arguments: [token.hash, token.kind, token.username, token.created, token.expiration, token.pair]
            )
        }
    }

    func token(hash: String) throws(StoreError) -> TokenRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM tokens WHERE hash = ?", arguments: [hash]) }
            .map { row in
                TokenRecord(
                    hash: row["hash"],
                    kind: row["kind"],
                    username: row["username"],
                    created: row["created"],
                    expiration: row["expiration"],
                    invalidated: row["invalidated"],
                    pair: row["pair"]
                )
            }
    }

    /// Invalidates the tokens with these hashes, or all of a user's of the given kinds (Elasticsearch's access and
    /// refresh tokens unless told); returns how many were newly and how many already invalid.
    func invalidateTokens(
        hashes: [String],
        username: String?,
        kinds: [String] = ["access", "refresh"],
        at time: Int64
    ) throws(StoreError) -> (Int, Int) {
        try write { db in
            var condition = "hash IN (\(hashes.map { _ in "?" }.joined(separator: ",")))"
            var arguments = StatementArguments(hashes)
            if let username {
                condition = "username = ? AND kind IN (\(kinds.map { _ in "?" }.joined(separator: ",")))"
                arguments = StatementArguments([username] + kinds)
            }
            let previously =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM tokens WHERE \(condition) AND invalidated IS NOT NULL",
                    arguments: arguments
                ) ?? 0
            try db.execute(
                sql: "UPDATE tokens SET invalidated = \(time) WHERE \(condition) AND invalidated IS NULL",
                arguments: arguments
            )
            return (db.changesCount, previously)
        }
    }

    /// Removes the tokens that expired or were invalidated before `time` (sessions and tokens accumulate otherwise).
    func removeTokens(endedBefore time: Int64) throws(StoreError) {
        try write { db in
            try db.execute(
                sql: "DELETE FROM tokens WHERE expiration < ? OR invalidated < ?",
                arguments: [time, time]
            )
        }
    }

    // MARK: Application privileges

    func applicationPrivileges() throws(StoreError) -> [ApplicationPrivilegeRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM application_privileges ORDER BY application, name")
        }.map { row in
            ApplicationPrivilegeRecord(
                application: row["application"],
                name: row["name"],
                actions: (try? JSON.parse(row["actions"] as String))?.arrayValue?.compactMap(\.stringValue) ?? [],
                metadata: (try? JSON.parse(row["metadata"] as String))?.objectValue ?? [:]
            )
        }
    }

    /// Inserts or replaces privileges; for each, whether it was created.
    func putApplicationPrivileges(_ privileges: [ApplicationPrivilegeRecord]) throws(StoreError) -> [Bool] {
        try write { db in
            var created: [Bool] = []
            for privilege in privileges {
                let existed =
                    try Bool.fetchOne(
                        db,
                        sql: "SELECT 1 FROM application_privileges WHERE application = ? AND name = ?",
                        arguments: [privilege.application, privilege.name]
                    ) ?? false
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO application_privileges(application, name, actions, metadata)
                        VALUES (?, ?, ?, ?)
                        """,
                    arguments: [
                        privilege.application, privilege.name,
                        JSON.array(privilege.actions.map { .string($0) }).serialized(),
                        JSON.object(privilege.metadata).serialized(),
                    ]
                )
                created.append(!existed)
            }
            return created
        }
    }

    func deleteApplicationPrivilege(application: String, name: String) throws(StoreError) -> Bool {
        try write { db in
            try db.execute(
                sql: "DELETE FROM application_privileges WHERE application = ? AND name = ?",
                arguments: [application, name]
            )
            return db.changesCount > 0
        }
    }
}
