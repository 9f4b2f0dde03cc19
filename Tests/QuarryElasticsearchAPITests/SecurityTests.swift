import Foundation
import Logging
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// Users, roles and API keys on the Elasticsearch API, in process: who may do what, with Elasticsearch's errors.
@Suite(.mayBlock)
struct SecurityTests {
    /// The API with security on over a store in a temporary directory; `elastic`'s password is
    /// ``TestElasticUser/password``.
    struct Secured {
        let api: ElasticsearchAPI
        let security: ElasticsearchSecurity
        let directory: URL

        /// Sends a request with `authorization` (the elastic user's by default).
        @discardableResult
        func call(
            _ method: ESRequest.Method,
            _ target: String,
            _ body: String = "",
            as authorization: String? = TestElasticUser.authorization
        ) throws -> ESResponse {
            api.handle(
                try ESRequest(method: method, target: target, body: Array(body.utf8), authorization: authorization)
            )
        }

        /// Creates a user with `roles` and returns its `Basic` header.
        func user(_ name: String, roles: [String]) throws -> String {
            let roleList = roles.map { "\"\($0)\"" }.joined(separator: ",")
            let response = try call(
                .put,
                "/_security/user/\(name)",
                #"{"password":"\#(name)-password","roles":[\#(roleList)]}"#
            )
            #expect(response.status == 200, "\(response.json?.serialized() ?? "")")
            return TestElasticUser.basic(name, "\(name)-password")
        }

        /// Creates an API key as `authorization` and returns its `ApiKey` header.
        func apiKey(_ body: String, as authorization: String = TestElasticUser.authorization) throws -> String {
            let response = try call(.post, "/_security/api_key", body, as: authorization)
            #expect(response.status == 200, "\(response.json?.serialized() ?? "")")
            return "ApiKey " + (response.json?["encoded"]?.stringValue ?? "")
        }
    }

    func withSecured(
        _ configuration: ElasticsearchSecurity.Configuration = TestElasticUser.configuration,
        logger: Logger = Logger(label: "quarry-test"),
        _ body: (Secured) async throws -> Void
    ) async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let security = try ElasticsearchSecurity(directory: directory, configuration: configuration, logger: logger)
            _ = try security.bootstrapElasticUser(password: TestElasticUser.password)
            let secured = Secured(
                api: ElasticsearchAPI(store: store, security: security),
                security: security,
                directory: directory
            )
            for (index, document) in [
                ("logs-1", #"{"m":"one"}"#), ("logs-2", #"{"m":"two"}"#), ("secret", #"{"m":"key"}"#),
            ] {
                #expect(try secured.call(.post, "/\(index)/_doc?refresh=true", document).status == 201)
            }
            try await body(secured)
        }
    }

    static func reason(_ response: ESResponse) -> String {
        response.json?["error"]?["reason"]?.stringValue ?? ""
    }

    static func indices(_ response: ESResponse) -> [String] {
        (response.json?["hits"]?["hits"]?.arrayValue ?? []).compactMap { $0["_index"]?.stringValue }.sorted()
    }

    @Test func rolesGrantIndexPrivilegesByPattern() async throws {
        try await withSecured { secured in
            #expect(
                try secured.call(
                    .put,
                    "/_security/role/logs_reader",
                    #"{"cluster":["monitor"],"indices":[{"names":["logs-*"],"privileges":["read","view_index_metadata"]}]}"#
                ).json?["role"]?["created"] == true
            )
            let reader = try secured.user("reader", roles: ["logs_reader"])
            #expect(try secured.call(.get, "/", as: reader).status == 200)
            // Every index, a wildcard and no index at all reach only what the role allows.
            for target in ["/_search", "/*/_search", "/_all/_search", "/logs-*,secret*/_search"] {
                let response = try secured.call(.get, target, as: reader)
                #expect(response.status == 200, "\(target)")
                #expect(Self.indices(response) == ["logs-1", "logs-2"], "\(target)")
            }
            #expect(Self.indices(try secured.call(.get, "/secret*/_search", as: reader)) == [])
            let named = try secured.call(.get, "/secret/_search", as: reader)
            #expect(named.status == 403)
            #expect(named.json?["error"]?["type"] == "security_exception")
            #expect(
                Self.reason(named)
                    == "action [indices:data/read/search] is unauthorized for user [reader] with effective roles "
                    + "[logs_reader] on indices [secret], this action is granted by the index privileges [read,all]"
            )
            // A name that does not exist is refused the same way: a 403 tells nothing about what exists.
            #expect(try secured.call(.get, "/nothing/_search", as: reader).status == 403)
            let write = try secured.call(.post, "/logs-1/_doc", #"{"m":"x"}"#, as: reader)
            #expect(write.status == 403)
            #expect(
                Self.reason(write).hasSuffix(
                    "on indices [logs-1], this action is granted by the index privileges [create,index,write,all]"
                )
            )
            let settings = try secured.call(.put, "/_cluster/settings", #"{"persistent":{}}"#, as: reader)
            #expect(settings.status == 403)
            #expect(Self.reason(settings).hasSuffix("this action is granted by the cluster privileges [manage,all]"))
            let users = try secured.call(.get, "/_security/user", as: reader)
            #expect(users.status == 403)
            #expect(Self.reason(users).contains("cluster privileges [read_security,manage_security,all]"))
            // Mapping and aliases are metadata: view_index_metadata on the allowed indices only.
            #expect(try secured.call(.get, "/logs-1/_mapping", as: reader).status == 200)
            #expect(try secured.call(.get, "/secret/_mapping", as: reader).status == 403)
            let mappings = try secured.call(.get, "/_mapping", as: reader).json?.objectValue?.keys.sorted()
            #expect(mappings == ["logs-1", "logs-2"])
        }
    }

    @Test func bulkMultiGetAndMultiSearchAreCheckedItemByItem() async throws {
        try await withSecured { secured in
            #expect(
                try secured.call(
                    .put,
                    "/_security/role/logs_writer",
                    #"{"indices":[{"names":["logs-*"],"privileges":["read","write","create_index"]}]}"#
                ).status == 200
            )
            let writer = try secured.user("writer", roles: ["logs_writer"])
            let bulk = """
                {"index":{"_index":"logs-1","_id":"a"}}
                {"m":"allowed"}
                {"index":{"_index":"secret","_id":"b"}}
                {"m":"refused"}
                {"create":{"_index":"logs-new","_id":"c"}}
                {"m":"allowed, creating the index"}

                """
            let response = try secured.call(.post, "/_bulk?refresh=true", bulk, as: writer)
            #expect(response.status == 200)
            #expect(response.json?["errors"] == true)
            let statuses = response.json?["items"]?.arrayValue?.compactMap {
                $0.objectValue?.first?.value["status"]?.intValue
            }
            #expect(statuses == [201, 403, 201])
            #expect(try secured.call(.get, "/secret/_doc/b").status == 404, "the refused item was not written")

            let mget = try secured.call(
                .post,
                "/_mget",
                #"{"docs":[{"_index":"logs-1","_id":"a"},{"_index":"secret","_id":"b"}]}"#,
                as: writer
            )
            let docs = mget.json?["docs"]?.arrayValue ?? []
            #expect(docs.first?["found"] == true)
            #expect(docs.last?["error"]?["type"] == "security_exception")

            let msearch = "{\"index\":\"logs-1\"}\n{}\n{\"index\":\"secret\"}\n{}\n{\"index\":\"*\"}\n{}\n"
            let searches =
                try secured.call(.post, "/_msearch", msearch, as: writer).json?["responses"]?.arrayValue ?? []
            #expect(searches.map { $0["status"]?.intValue } == [200, 403, 200])
            #expect(Self.indices(ESResponse(json: searches[2])) == ["logs-1", "logs-1", "logs-2", "logs-new"])
        }
    }

    @Test func createDocAndAutoCreateAreTheirOwnPrivileges() async throws {
        try await withSecured { secured in
            #expect(
                try secured.call(
                    .put,
                    "/_security/role/shipper",
                    #"{"indices":[{"names":["logs-*"],"privileges":["create_doc"]}]}"#
                ).status == 200
            )
            let shipper = try secured.user("shipper", roles: ["shipper"])
            #expect(try secured.call(.put, "/logs-1/_create/new", #"{"m":1}"#, as: shipper).status == 201)
            // Overwriting is `index`, which create_doc does not grant.
            #expect(try secured.call(.put, "/logs-1/_doc/new", #"{"m":2}"#, as: shipper).status == 403)
            // A new index needs auto_configure or create_index.
            let missing = try secured.call(.put, "/logs-9/_create/x", #"{"m":1}"#, as: shipper)
            #expect(missing.status == 403)
            #expect(Self.reason(missing).hasPrefix("action [indices:admin/auto_create] is unauthorized"))
        }
    }

    @Test func anAPIKeyIsLimitedByItsDescriptorsAndItsOwner() async throws {
        try await withSecured { secured in
            #expect(
                try secured.call(
                    .put,
                    "/_security/role/logs_admin",
                    #"{"cluster":["manage_own_api_key"],"indices":[{"names":["logs-*"],"privileges":["all"]}]}"#
                ).status == 200
            )
            let owner = try secured.user("owner", roles: ["logs_admin"])
            // The key asks for read on everything; its owner has logs-* only, so it reads logs-* only, and writes
            // nothing.
            let key = try secured.apiKey(
                #"{"name":"everything","role_descriptors":{"r":{"index":[{"names":["*"],"privileges":["read"]}]}}}"#,
                as: owner
            )
            #expect(Self.indices(try secured.call(.get, "/_search", as: key)) == ["logs-1", "logs-2"])
            #expect(try secured.call(.get, "/secret/_search", as: key).status == 403)
            let write = try secured.call(.post, "/logs-1/_doc", #"{"m":1}"#, as: key)
            #expect(write.status == 403)
            #expect(Self.reason(write).contains("is unauthorized for API key id ["))
            #expect(Self.reason(write).contains("of user [owner] on indices [logs-1]"))
            let me = try secured.call(.get, "/_security/_authenticate", as: key).json
            #expect(me?["username"] == "owner")
            #expect(me?["authentication_type"] == "api_key")
            #expect(me?["api_key"]?["name"] == "everything")

            // manage_own_api_key: the owner sees and invalidates its own keys, not elastic's.
            let elasticKey = try secured.call(.post, "/_security/api_key", #"{"name":"elastic-key"}"#).json
            let listed = try secured.call(.get, "/_security/api_key", as: owner).json?["api_keys"]?.arrayValue ?? []
            #expect(listed.map { $0["name"]?.stringValue } == ["everything"])
            let elasticID = elasticKey?["id"]?.stringValue ?? ""
            let invalidate = try secured.call(.delete, "/_security/api_key", #"{"ids":["\#(elasticID)"]}"#, as: owner)
            #expect(invalidate.json?["invalidated_api_keys"] == [])
            let ownID = listed.first?["id"]?.stringValue ?? ""
            let own = try secured.call(.delete, "/_security/api_key", #"{"ids":["\#(ownID)"]}"#, as: owner)
            #expect(own.json?["invalidated_api_keys"] == [.string(ownID)])
            // Invalidated takes effect at once, although the key was cached a moment ago.
            let refused = try secured.call(.get, "/_search", as: key)
            #expect(refused.status == 401)
            #expect(
                refused.json?["error"]?["additional_unsuccessful_credentials"]
                    == .string("API key: api key [\(ownID)] has been invalidated")
            )
        }
    }

    @Test func expiredKeysAndUpdatesFollowElasticsearch() async throws {
        try await withSecured { secured in
            let expiring = try secured.call(.post, "/_security/api_key", #"{"name":"brief","expiration":"1ms"}"#)
            let encoded = expiring.json?["encoded"]?.stringValue ?? ""
            try await Task.sleep(for: .milliseconds(20))
            let expired = try secured.call(.get, "/", as: "ApiKey " + encoded)
            #expect(expired.status == 401)
            #expect(expired.json?["error"]?["additional_unsuccessful_credentials"] == "API key: api key is expired")

            let key = try secured.call(.post, "/_security/api_key", #"{"name":"updatable"}"#).json
            let id = key?["id"]?.stringValue ?? ""
            let header = "ApiKey " + (key?["encoded"]?.stringValue ?? "")
            #expect(try secured.call(.get, "/secret/_search", as: header).status == 200)
            let update =
                #"{"role_descriptors":{"r":{"indices":[{"names":["logs-*"],"privileges":["read"]}]}},"metadata":{"a":1}}"#
            #expect(try secured.call(.put, "/_security/api_key/\(id)", update).json?["updated"] == true)
            #expect(try secured.call(.put, "/_security/api_key/\(id)", update).json?["updated"] == false)
            #expect(try secured.call(.get, "/secret/_search", as: header).status == 403, "the update applies at once")
            let listed = try secured.call(.get, "/_security/api_key?id=\(id)&with_limited_by=true").json
            #expect(listed?["api_keys"]?[0]?["metadata"]?["a"] == 1)
            #expect(listed?["api_keys"]?[0]?["limited_by"]?[0]?["superuser"] != nil)
            let query = try secured.call(
                .post,
                "/_security/_query/api_key",
                #"{"query":{"term":{"name":"updatable"}}}"#
            )
            #expect(query.json?["count"] == 1)
        }
    }

    @Test func usersRolesAndPasswordsAsElasticsearchManagesThem() async throws {
        try await withSecured { secured in
            let viewer = try secured.user("val", roles: ["viewer"])
            #expect(try secured.call(.get, "/logs-1/_search", as: viewer).status == 200)
            #expect(try secured.call(.delete, "/logs-1", as: viewer).status == 403)
            // Own password: allowed; the old one stops working at once.
            #expect(
                try secured.call(.post, "/_security/user/_password", #"{"password":"new-password"}"#, as: viewer).status
                    == 200
            )
            #expect(try secured.call(.get, "/", as: viewer).status == 401)
            #expect(try secured.call(.get, "/", as: TestElasticUser.basic("val", "new-password")).status == 403)

            #expect(try secured.call(.put, "/_security/user/elastic", #"{"password":"x","roles":[]}"#).status == 400)
            #expect(try secured.call(.delete, "/_security/user/elastic").status == 400)
            #expect(try secured.call(.put, "/_security/role/superuser", #"{"cluster":["all"]}"#).status == 400)
            #expect(try secured.call(.put, "/_security/user/short", #"{"password":"12345","roles":[]}"#).status == 400)
            let unknownPrivilege = try secured.call(.put, "/_security/role/bad", #"{"cluster":["everything"]}"#)
            #expect(unknownPrivilege.status == 400)
            #expect(Self.reason(unknownPrivilege).hasPrefix("unknown cluster privilege [everything]"))
            let dls = try secured.call(
                .put,
                "/_security/role/dls",
                #"{"indices":[{"names":["*"],"privileges":["read"],"query":{"match_all":{}}}]}"#
            )
            #expect(dls.status == 400, "document level security is refused rather than ignored")
            let missing = try secured.call(.get, "/_security/user/nobody")
            #expect(missing.status == 404)
            #expect(missing.json == [:])
            #expect(try secured.call(.get, "/_security/role/viewer").json?["viewer"]?["metadata"]?["_reserved"] == true)
            #expect(try secured.call(.delete, "/_security/user/val").json?["found"] == true)
            #expect(try secured.call(.get, "/", as: TestElasticUser.basic("val", "new-password")).status == 401)

            let privileges = try secured.call(
                .post,
                "/_security/user/_has_privileges",
                #"{"cluster":["monitor","manage_security"],"index":[{"names":["logs-*"],"privileges":["read","delete_index"]}]}"#,
                as: try secured.user("vic", roles: ["viewer"])
            ).json
            #expect(privileges?["has_all_requested"] == false)
            #expect(privileges?["cluster"] == ["monitor": false, "manage_security": false])
            #expect(privileges?["index"]?["logs-*"] == ["read": true, "delete_index": false])
        }
    }

    @Test func bearerTokensAreIssuedRefreshedAndInvalidated() async throws {
        try await withSecured { secured in
            _ = try secured.user("tok", roles: ["viewer"])
            let issued = try secured.call(
                .post,
                "/_security/oauth2/token",
                #"{"grant_type":"password","username":"tok","password":"tok-password"}"#
            ).json
            #expect(issued?["type"] == "Bearer")
            #expect(issued?["expires_in"] == 1200)
            #expect(issued?["authentication"]?["username"] == "tok")
            let access = "Bearer " + (issued?["access_token"]?.stringValue ?? "")
            let me = try secured.call(.get, "/_security/_authenticate", as: access).json
            #expect(me?["username"] == "tok")
            #expect(me?["authentication_type"] == "token")
            #expect(try secured.call(.get, "/logs-1/_search", as: access).status == 200)
            #expect(try secured.call(.delete, "/logs-1", as: access).status == 403)

            let refresh = issued?["refresh_token"]?.stringValue ?? ""
            let refreshed = try secured.call(
                .post,
                "/_security/oauth2/token",
                #"{"grant_type":"refresh_token","refresh_token":"\#(refresh)"}"#
            ).json
            let renewed = "Bearer " + (refreshed?["access_token"]?.stringValue ?? "")
            #expect(try secured.call(.get, "/", as: renewed).status == 403, "authenticated as a viewer, not monitor")
            #expect(try secured.call(.get, "/", as: access).status == 401, "a refresh invalidates the old pair")
            let again = try secured.call(
                .post,
                "/_security/oauth2/token",
                #"{"grant_type":"refresh_token","refresh_token":"\#(refresh)"}"#
            )
            #expect(again.status == 400, "a refresh token is used once")

            let token = refreshed?["access_token"]?.stringValue ?? ""
            let invalidated = try secured.call(.delete, "/_security/oauth2/token", #"{"token":"\#(token)"}"#).json
            #expect(invalidated?["invalidated_tokens"] == 1)
            #expect(try secured.call(.get, "/logs-1/_search", as: renewed).status == 401)
            #expect(try secured.call(.get, "/logs-1/_search", as: "Bearer not-a-token").status == 401)
            let wrong = try secured.call(
                .post,
                "/_security/oauth2/token",
                #"{"grant_type":"password","username":"tok","password":"wrong-password"}"#
            )
            #expect(wrong.status == 401)
        }
    }

    @Test func anonymousAccessOnlyWhenARoleIsGiven() async throws {
        var configuration = TestElasticUser.configuration
        configuration.anonymousRoles = ["viewer"]
        try await withSecured(configuration) { (secured: Secured) async throws in
            #expect(try secured.call(.get, "/logs-1/_search", as: nil).status == 200)
            #expect(try secured.call(.post, "/logs-1/_doc", #"{"a":1}"#, as: nil).status == 403)
            #expect(try secured.call(.get, "/_security/_authenticate", as: nil).json?["username"] == "_anonymous")
            // Wrong credentials are still wrong: anonymous access is for requests without any.
            #expect(try secured.call(.get, "/", as: TestElasticUser.basic("elastic", "wrong")).status == 401)
        }
        try await withSecured { secured in
            let refused = try secured.call(.get, "/", as: nil)
            #expect(refused.status == 401)
            #expect(refused.headers.filter { $0.0 == "WWW-Authenticate" }.count == 3)
        }
    }

    /// A change written by another process (`quarry users remove` beside `quarry serve`) reaches the server's cache
    /// within a second.
    @Test func changesFromAnotherProcessDropTheCache() async throws {
        try await withSecured { secured in
            let header = try secured.user("temp", roles: ["viewer"])
            #expect(try secured.call(.get, "/logs-1/_search", as: header).status == 200)
            let other = try ElasticsearchSecurity(directory: secured.directory, logger: Logger(label: "other"))
            #expect(try other.deleteUser("temp"))
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try secured.call(.get, "/logs-1/_search", as: header).status == 401)
        }
    }

    /// Malformed credentials of every kind get a 401 in Elasticsearch's shape, and ten thousand wrong passwords
    /// never put a password in a log line, nor grow the throttle's table past its bound.
    @Test(.timeLimit(.minutes(8))) func badCredentialsAreRefusedAndNeverLogged() async throws {
        var configuration = TestElasticUser.configuration
        configuration.throttle = LoginThrottle.Configuration(
            freeFailures: 3,
            baseDelay: .milliseconds(1),
            maximumDelay: .milliseconds(2),
            maximumTracked: 100
        )
        var logger = Logger(label: "quarry-security-test") { LogCapture.Handler(label: $0) }
        logger.logLevel = .trace
        try await withSecured(configuration, logger: logger) { secured in
            let key = try secured.call(.post, "/_security/api_key", #"{"name":"k"}"#).json
            let id = key?["id"]?.stringValue ?? ""
            let secret = key?["api_key"]?.stringValue ?? ""
            func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
            let headers = [
                "Basic", "Basic !!!", "Basic " + base64("no-colon"), "Basic " + base64(":"), "ApiKey", "ApiKey %%%",
                "ApiKey " + base64("\(id):"), "ApiKey " + base64("unknown:\(secret)"),
                "ApiKey " + base64("\(id):\(secret.dropLast(3))"), "ApiKey " + base64(id), "Bearer", "Bearer abc",
                "Digest username=elastic", "basic " + base64("elastic:" + String(repeating: "x", count: 100_000)),
                "ApiKey " + base64("\(id):\(secret)\u{0}"),
            ]
            for header in headers {
                let response = try secured.call(.get, "/_search", as: header)
                #expect(response.status == 401, "\(header.prefix(40))")
                #expect(response.json?["error"]?["type"] == "security_exception", "\(header.prefix(40))")
            }
            for attempt in 0..<10_000 {
                let password = "wrong-password-\(attempt)"
                let address = "10.0.\(attempt / 250 % 250).\(attempt % 250)"
                var request = try ESRequest(
                    method: .get,
                    target: "/",
                    authorization: TestElasticUser.basic("elastic", password)
                )
                request.remoteAddress = address
                #expect(secured.api.handle(request).status == 401)
            }
            #expect(secured.security.throttle.trackedCount <= 100)
            let delay = secured.security.attemptDelay(
                authorization: TestElasticUser.basic("elastic", "again"),
                remoteAddress: "192.0.2.1"
            )
            #expect(delay > .zero, "the user's failures slow down the next attempt")
            // A success forgets the user's failures.
            #expect(try secured.call(.get, "/").status == 200)
            #expect(
                secured.security.attemptDelay(authorization: TestElasticUser.authorization, remoteAddress: nil) == .zero
            )
            let log = LogCapture.shared.text
            #expect(log.contains("repeated authentication failures"))
            #expect(!log.contains("wrong-password"))
            #expect(!log.contains(secret))
        }
    }
}
