import Foundation
import HTTPTypes
import HummingbirdTesting
import Runtime
import TestSupport
import XCTest
@testable import Edge
@testable import TenantRuntime

/// End-user auth through the edge, in router mode over an in-memory control plane. The e-mail
/// flows (confirmation, recovery) run against a real SMTP sink in Tests/Clients.
final class AuthTests: XCTestCase {
    static func keyed(_ key: String, bearer: String? = nil) -> HTTPFields {
        var headers: HTTPFields = [.apikey: key, .contentType: "application/json"]
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        return headers
    }

    func withAuthTenant(
        _ settings: JSONValue = ["autoconfirm": true], _ body: @escaping @Sendable (TestNode, (anon: String, service: String), any TestClientProtocol) async throws -> Void
    ) async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, "acme")
            let configured = try await client.call(.put, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders, json: settings)
            XCTAssertEqual(configured.status, .ok, String(buffer: configured.body))
            try await body(node, keys, client)
        }
    }

    func testSettingsAreValidatedAndSecretsAreWriteOnly() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            _ = try await client.createTenant(node, "acme")
            let badPort = try await client.call(
                .put, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders,
                json: ["smtp": ["host": "mail.example.com", "port": 0, "from": "noreply@example.com"]])
            XCTAssertEqual(badPort.status, .badRequest)
            XCTAssertEqual(badPort.code, "MB101")
            XCTAssertTrue(String(buffer: badPort.body).contains("smtp.port"))
            let unknown = try await client.call(.put, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders, json: ["autoconfirmed": true])
            XCTAssertEqual(unknown.code, "MB102")
            let badIssuer = try await client.call(
                .put, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders,
                json: ["providers": [["name": "local", "issuer": "ftp://x", "clientId": "c"]]])
            XCTAssertEqual(badIssuer.code, "MB101")

            let put = try await client.call(
                .put, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders,
                json: [
                    "autoconfirm": false, "siteUrl": "https://app.example.com",
                    "smtp": ["host": "mail.example.com", "port": 587, "username": "u", "password": "smtp-secret-1", "from": "noreply@example.com", "tls": true],
                    "providers": [["name": "local", "issuer": "https://id.example.com", "clientId": "c1", "clientSecret": "oidc-secret-1"]],
                ])
            XCTAssertEqual(put.status, .ok, String(buffer: put.body))
            let got = try await client.call(.get, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders)
            let text = String(buffer: got.body)
            XCTAssertFalse(text.contains("smtp-secret-1"), "secrets never come back")
            XCTAssertFalse(text.contains("oidc-secret-1"))
            XCTAssertEqual(got.json?["smtp"]?["passwordSet"], true)
            XCTAssertEqual(got.json?["providers"]?.arrayValue?.first?["clientSecretSet"], true)

            // A PUT that leaves the secrets out keeps them.
            var again = try XCTUnwrap(got.json?.objectValue)
            again["autoconfirm"] = true
            var smtp = try XCTUnwrap(again["smtp"]?.objectValue)
            smtp["passwordSet"] = nil
            again["smtp"] = .object(smtp)
            again["providers"] = [["name": "local", "issuer": "https://id.example.com", "clientId": "c1"]]
            let kept = try await client.call(.put, "/admin/v1/tenants/acme/auth", headers: node.adminHeaders, json: .object(again))
            XCTAssertEqual(kept.status, .ok, String(buffer: kept.body))
            XCTAssertEqual(kept.json?["smtp"]?["passwordSet"], true)
            XCTAssertEqual(kept.json?["providers"]?.arrayValue?.first?["clientSecretSet"], true)
            XCTAssertEqual(kept.json?["autoconfirm"], true)
        }
    }

    func testSignUpWithoutMailOrAutoconfirmIsRefusedAndCreatesNothing() async throws {
        try await withAuthTenant(["autoconfirm": false]) { _, keys, client in
            let signUp = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            XCTAssertEqual(signUp.status, .unprocessableContent)
            XCTAssertEqual(signUp.code, "email_provider_disabled")
            XCTAssertEqual(signUp.headers[.supabaseAPIVersion], "2024-01-01")
            let signIn = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                json: ["email": "ann@example.com", "password": "secret-pw"])
            XCTAssertEqual(signIn.code, "invalid_credentials")
        }
    }

    func testSignUpSignInAndTheUsersOwnRecord() async throws {
        try await withAuthTenant { node, keys, client in
            let signUp = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon),
                json: ["email": "Ann@Example.com", "password": "secret-pw", "data": ["name": "Ann"]])
            XCTAssertEqual(signUp.status, .ok, String(buffer: signUp.body))
            let access = try XCTUnwrap(signUp.json?["access_token"]?.stringValue)
            XCTAssertEqual(signUp.json?["user"]?["email"], "ann@example.com")
            XCTAssertEqual(signUp.json?["token_type"], "bearer")

            // The access token is one of the tenant's JWTs, for role authenticated.
            let tree = try await XCTUnwrapAsync(try await node.services.directory.tree(for: "acme"))
            let claims = try tree.verify(access)
            XCTAssertEqual(claims["role"], "authenticated")
            XCTAssertEqual(claims["email"], "ann@example.com")
            XCTAssertEqual(claims["user_metadata"]?["name"], "Ann")
            XCTAssertEqual(claims["sub"], signUp.json?["user"]?["id"])

            let me = try await client.call(.get, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: access))
            XCTAssertEqual(me.status, .ok, String(buffer: me.body))
            XCTAssertEqual(me.json?["email"], "ann@example.com")
            let anonMe = try await client.call(.get, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon))
            XCTAssertEqual(anonMe.status, .unauthorized)
            XCTAssertEqual(anonMe.code, "no_authorization")

            let twice = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "other-pw"])
            XCTAssertEqual(twice.status, .unprocessableContent)
            XCTAssertEqual(twice.code, "user_already_exists")
            let weak = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "bob@example.com", "password": "123"])
            XCTAssertEqual(weak.code, "weak_password")
            XCTAssertEqual(weak.json?["weak_password"]?["reasons"], ["length"])
            let badEmail = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "not-an-address", "password": "secret-pw"])
            XCTAssertEqual(badEmail.status, .badRequest)
            XCTAssertEqual(badEmail.code, "validation_failed")

            let wrong = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                json: ["email": "ann@example.com", "password": "wrong-pw"])
            XCTAssertEqual(wrong.status, .badRequest)
            XCTAssertEqual(wrong.code, "invalid_credentials")
            let right = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                json: ["email": "ann@example.com", "password": "secret-pw"])
            XCTAssertEqual(right.status, .ok)

            let updated = try await client.call(
                .put, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: access),
                json: ["password": "new-secret-pw", "data": ["name": "Ann B", "plan": "pro"]])
            XCTAssertEqual(updated.status, .ok, String(buffer: updated.body))
            XCTAssertEqual(updated.json?["user_metadata"], ["name": "Ann B", "plan": "pro"])
            let oldPassword = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                json: ["email": "ann@example.com", "password": "secret-pw"])
            XCTAssertEqual(oldPassword.code, "invalid_credentials")
        }
    }

    func testARetriedRefreshWithinTheReuseIntervalIsNoReuse() async throws {
        try await withAuthTenant { _, keys, client in
            let signUp = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            let first = try XCTUnwrap(signUp.json?["refresh_token"]?.stringValue)
            for _ in 0..<2 {
                let refreshed = try await client.call(
                    .post, "/t/acme/auth/v1/token?grant_type=refresh_token", headers: AuthTests.keyed(keys.anon), json: ["refresh_token": .string(first)])
                XCTAssertEqual(refreshed.status, .ok, "a retry within the default 10 s is answered, not punished")
            }
        }
    }

    func testRefreshRotatesAndReuseRevokesTheFamily() async throws {
        try await withAuthTenant(["autoconfirm": true, "refreshTokenReuseInterval": 0]) { _, keys, client in
            let signUp = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            let first = try XCTUnwrap(signUp.json?["refresh_token"]?.stringValue)
            let refreshed = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=refresh_token", headers: AuthTests.keyed(keys.anon), json: ["refresh_token": .string(first)])
            XCTAssertEqual(refreshed.status, .ok, String(buffer: refreshed.body))
            let second = try XCTUnwrap(refreshed.json?["refresh_token"]?.stringValue)
            let access = try XCTUnwrap(refreshed.json?["access_token"]?.stringValue)
            XCTAssertNotEqual(first, second)

            let reused = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=refresh_token", headers: AuthTests.keyed(keys.anon), json: ["refresh_token": .string(first)])
            XCTAssertEqual(reused.status, .badRequest)
            XCTAssertEqual(reused.code, "refresh_token_already_used")
            // The thief's replay took the legitimate holder's session down with it.
            let current = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=refresh_token", headers: AuthTests.keyed(keys.anon), json: ["refresh_token": .string(second)])
            XCTAssertEqual(current.code, "refresh_token_not_found")
            let me = try await client.call(.get, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: access))
            XCTAssertEqual(me.status, .forbidden)
            XCTAssertEqual(me.code, "session_not_found")
        }
    }

    func testLogoutScopes() async throws {
        try await withAuthTenant { _, keys, client in
            _ = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            var sessions: [(access: String, refresh: String)] = []
            for _ in 0..<3 {
                let signIn = try await client.call(
                    .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                    json: ["email": "ann@example.com", "password": "secret-pw"])
                sessions.append((try XCTUnwrap(signIn.json?["access_token"]?.stringValue), try XCTUnwrap(signIn.json?["refresh_token"]?.stringValue)))
            }
            let local = try await client.call(.post, "/t/acme/auth/v1/logout?scope=local", headers: AuthTests.keyed(keys.anon, bearer: sessions[0].access))
            XCTAssertEqual(local.status, .noContent)
            let status: (Int) async throws -> HTTPResponse.Status = { index in
                try await client.call(.get, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: sessions[index].access)).status
            }
            try await assertEqual(try await status(0), .forbidden)
            try await assertEqual(try await status(1), .ok)
            let others = try await client.call(.post, "/t/acme/auth/v1/logout?scope=others", headers: AuthTests.keyed(keys.anon, bearer: sessions[1].access))
            XCTAssertEqual(others.status, .noContent)
            try await assertEqual(try await status(1), .ok)
            try await assertEqual(try await status(2), .forbidden)
            let global = try await client.call(.post, "/t/acme/auth/v1/logout", headers: AuthTests.keyed(keys.anon, bearer: sessions[1].access))
            XCTAssertEqual(global.status, .noContent)
            try await assertEqual(try await status(1), .forbidden)
            let refresh = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=refresh_token", headers: AuthTests.keyed(keys.anon),
                json: ["refresh_token": .string(sessions[1].refresh)])
            XCTAssertEqual(refresh.code, "refresh_token_not_found")
            let badScope = try await client.call(.post, "/t/acme/auth/v1/logout?scope=everyone", headers: AuthTests.keyed(keys.anon, bearer: sessions[1].access))
            XCTAssertEqual(badScope.code, "validation_failed")
        }
    }

    func testChangingThePasswordEndsEveryOtherSession() async throws {
        try await withAuthTenant { _, keys, client in
            _ = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            var tokens: [String] = []
            for _ in 0..<2 {
                let signIn = try await client.call(
                    .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                    json: ["email": "ann@example.com", "password": "secret-pw"])
                tokens.append(try XCTUnwrap(signIn.json?["access_token"]?.stringValue))
            }
            let changed = try await client.call(
                .put, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: tokens[0]), json: ["password": "brand-new-pw"])
            XCTAssertEqual(changed.status, .ok)
            let mine = try await client.call(.get, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: tokens[0]))
            XCTAssertEqual(mine.status, .ok, "the session that changed the password stays")
            let other = try await client.call(.get, "/t/acme/auth/v1/user", headers: AuthTests.keyed(keys.anon, bearer: tokens[1]))
            XCTAssertEqual(other.code, "session_not_found", "whoever knew the old password is signed out")
        }
    }

    func testPasswordGuessingIsThrottledPerAccount() async throws {
        try await withAuthTenant { _, keys, client in
            _ = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            var statuses: [HTTPResponse.Status] = []
            for attempt in 0..<12 {
                let reply = try await client.call(
                    .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                    json: ["email": "ann@example.com", "password": .string("guess-\(attempt)")])
                statuses.append(reply.status)
                if reply.status == .tooManyRequests {
                    XCTAssertEqual(reply.code, "over_request_rate_limit")
                    XCTAssertNotNil(reply.headers[.retryAfter])
                }
            }
            XCTAssertEqual(statuses.prefix(10).filter { $0 == .badRequest }.count, 10, "\(statuses)")
            XCTAssertEqual(statuses.suffix(2), [.tooManyRequests, .tooManyRequests])
            // Even the right password waits now: the account is locked for the window, not the guesser.
            let right = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=password", headers: AuthTests.keyed(keys.anon),
                json: ["email": "ann@example.com", "password": "secret-pw"])
            XCTAssertEqual(right.status, .tooManyRequests)
        }
    }

    func testAnotherTenantsUserTokenIsRefused() async throws {
        try await withAuthTenant { node, keys, client in
            let signUp = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), json: ["email": "ann@example.com", "password": "secret-pw"])
            let access = try XCTUnwrap(signUp.json?["access_token"]?.stringValue)
            let other = try await client.createTenant(node, "beta")
            let reply = try await client.call(.get, "/t/beta/auth/v1/user", headers: AuthTests.keyed(other.anon, bearer: access))
            XCTAssertEqual(reply.status, .unauthorized)
            XCTAssertEqual(reply.code, "PGRST301")
        }
    }

    func testBadGrantsAndBodies() async throws {
        try await withAuthTenant { _, keys, client in
            let noGrant = try await client.call(.post, "/t/acme/auth/v1/token", headers: AuthTests.keyed(keys.anon), json: ["x": 1])
            XCTAssertEqual(noGrant.code, "unsupported_grant_type")
            let notJSON = try await client.call(.post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon), raw: "{nope")
            XCTAssertEqual(notJSON.status, .badRequest)
            XCTAssertEqual(notJSON.code, "MB100")
            let longPassword = try await client.call(
                .post, "/t/acme/auth/v1/signup", headers: AuthTests.keyed(keys.anon),
                json: ["email": "ann@example.com", "password": .string(String(repeating: "x", count: 73))])
            XCTAssertEqual(longPassword.code, "validation_failed")
            let unknownCode = try await client.call(
                .post, "/t/acme/auth/v1/token?grant_type=pkce", headers: AuthTests.keyed(keys.anon),
                json: ["auth_code": "nope", "code_verifier": .string(String(repeating: "v", count: 43))])
            XCTAssertEqual(unknownCode.code, "flow_state_not_found")
            let settings = try await client.call(.get, "/t/acme/auth/v1/settings", headers: AuthTests.keyed(keys.anon))
            XCTAssertEqual(settings.json?["mailer_autoconfirm"], true)
            XCTAssertEqual(settings.json?["external"]?["email"], true)
            // An e-mail link with a bad token lands on the site with the error, never a JSON page.
            let link = try await client.call(.get, "/t/acme/auth/v1/verify?token=nope&type=signup")
            XCTAssertEqual(link.status, .seeOther)
            XCTAssertTrue(link.headers[.location]?.contains("error_code=otp_expired") == true, link.headers[.location] ?? "")
        }
    }
}
