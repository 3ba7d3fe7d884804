import Foundation
import Runtime
import TestSupport
import XCTest
@testable import Tenancy

/// End-user auth storage, run against both stores.
extension ControlPlaneStoreContract {
    func user(_ tenant: String, _ id: String, _ email: String) -> AuthUser {
        AuthUser(
            tenant: tenant, id: id, email: email, createdAt: Date(timeIntervalSince1970: 1_800_000_000),
            profile: AuthUser.Profile(updatedAt: Date(timeIntervalSince1970: 1_800_000_000), appMetadata: ["provider": "email"], userMetadata: ["n": 1]))
    }

    func refresh(_ tenant: String, _ hash: String, user: String, session: String, at: Date = Date()) -> AuthToken {
        AuthToken(tenant: tenant, hash: hash, kind: .refresh, userID: user, sessionID: session, createdAt: at)
    }

    func usersBelongToTheirTenant() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createTenant(tenant("beta"), secret: secret(), audit: audit("tenant.create", tenant: "beta"))
        var ann = user("acme", "u1", "ann@example.com")
        ann.profile.passwordHash = "$2b$10$hash"
        try await store.createUser(ann, token: nil)
        // The same address in another tenant is another person.
        try await store.createUser(user("beta", "u1", "ann@example.com"), token: nil)
        do {
            try await store.createUser(user("acme", "u2", "ann@example.com"), token: nil)
            XCTFail("a taken e-mail must be refused")
        } catch ControlPlaneError.duplicate {}
        try await assertEqual(try await store.user(tenant: "acme", email: "ann@example.com"), ann)
        try await assertEqual(try await store.user(tenant: "acme", id: "u1"), ann)
        try await assertNil(try await store.user(tenant: "acme", id: "u2"))

        ann.email = "ann@new.example"
        ann.profile.emailConfirmedAt = Date(timeIntervalSince1970: 1_800_000_100)
        ann.profile.userMetadata["n"] = 2
        try await assertTrue(try await store.updateUser(ann))
        try await assertEqual(try await store.user(tenant: "acme", id: "u1"), ann)
        try await store.createUser(user("acme", "u3", "cat@example.com"), token: nil)
        let stored = try await store.user(tenant: "acme", id: "u3")
        var cat = try XCTUnwrap(stored)
        cat.email = "ann@new.example"
        do {
            _ = try await store.updateUser(cat)
            XCTFail("moving onto a taken e-mail must be refused")
        } catch ControlPlaneError.duplicate {}

        try await assertTrue(try await store.deleteTenant("acme", audit: audit("tenant.delete", tenant: "acme")))
        try await assertNil(try await store.user(tenant: "acme", id: "u1"))
        try await assertNotNil(try await store.user(tenant: "beta", id: "u1"))
    }

    func oneTimeTokensAreTakenOnce() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let now = Date()
        let link = AuthToken(tenant: "acme", hash: "h1", kind: .confirmation, userID: "u1", data: ["challenge": "c"], createdAt: now)
        try await store.createUser(user("acme", "u1", "ann@example.com"), token: link)
        try await assertNil(try await store.takeToken(tenant: "acme", hash: "h1", kind: .recovery, notBefore: .distantPast))
        try await assertEqual(try await store.takeToken(tenant: "acme", hash: "h1", kind: .confirmation, notBefore: .distantPast)?.data, ["challenge": "c"])
        try await assertNil(try await store.takeToken(tenant: "acme", hash: "h1", kind: .confirmation, notBefore: .distantPast))
        // A newer link replaces an unused older one of the same kind.
        try await store.putToken(AuthToken(tenant: "acme", hash: "r1", kind: .recovery, userID: "u1", createdAt: now))
        try await store.putToken(AuthToken(tenant: "acme", hash: "r2", kind: .recovery, userID: "u1", createdAt: now))
        try await assertNil(try await store.takeToken(tenant: "acme", hash: "r1", kind: .recovery, notBefore: .distantPast))
        // An expired one is refused (and gone).
        try await assertNil(try await store.takeToken(tenant: "acme", hash: "r2", kind: .recovery, notBefore: now.addingTimeInterval(1)))
        try await assertNil(try await store.takeToken(tenant: "acme", hash: "r2", kind: .recovery, notBefore: .distantPast))
    }

    func refreshTokensRotateAndReuseRevokesTheSession() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createUser(user("acme", "u1", "ann@example.com"), token: nil)
        try await store.createSession(tenant: "acme", id: "s1", userID: "u1", refresh: refresh("acme", "t1", user: "u1", session: "s1"))
        try await store.createSession(tenant: "acme", id: "s2", userID: "u1", refresh: refresh("acme", "x1", user: "u1", session: "s2"))
        try await assertEqual(
            try await store.rotateRefreshToken(tenant: "acme", hash: "t1", nextHash: "t2", at: Date(), graceSince: Date().addingTimeInterval(60)), .rotated(userID: "u1", sessionID: "s1"))
        try await assertEqual(try await store.rotateRefreshToken(tenant: "acme", hash: "nope", nextHash: "z", at: Date(), graceSince: Date().addingTimeInterval(60)), .invalid)
        try await assertEqual(try await store.rotateRefreshToken(tenant: "acme", hash: "t1", nextHash: "t3", at: Date(), graceSince: Date().addingTimeInterval(60)), .reused)
        try await assertFalse(try await store.sessionIsActive(tenant: "acme", id: "s1"))
        // The whole family is gone, the current token included; the other session is untouched.
        try await assertEqual(try await store.rotateRefreshToken(tenant: "acme", hash: "t2", nextHash: "t4", at: Date(), graceSince: Date().addingTimeInterval(60)), .invalid)
        try await assertTrue(try await store.sessionIsActive(tenant: "acme", id: "s2"))

        // Within the grace period a spent token rotates again: the client's retry of a lost answer.
        try await store.createSession(tenant: "acme", id: "s3", userID: "u1", refresh: refresh("acme", "g1", user: "u1", session: "s3"))
        let spentAt = Date()
        try await assertEqual(
            try await store.rotateRefreshToken(tenant: "acme", hash: "g1", nextHash: "g2", at: spentAt, graceSince: spentAt),
            .rotated(userID: "u1", sessionID: "s3"))
        try await assertEqual(
            try await store.rotateRefreshToken(tenant: "acme", hash: "g1", nextHash: "g3", at: spentAt.addingTimeInterval(1), graceSince: spentAt.addingTimeInterval(-9)),
            .rotated(userID: "u1", sessionID: "s3"))
        try await assertEqual(
            try await store.rotateRefreshToken(tenant: "acme", hash: "g1", nextHash: "g4", at: spentAt.addingTimeInterval(20), graceSince: spentAt.addingTimeInterval(10)),
            .reused)

        // Two presentations of one token at once: exactly one rotates.
        let store = self.store
        let outcomes = try await withThrowingTaskGroup(of: RefreshRotation.self) { group in
            for index in 0..<4 {
                group.addTask { try await store.rotateRefreshToken(tenant: "acme", hash: "x1", nextHash: "x1-\(index)", at: Date(), graceSince: Date().addingTimeInterval(60)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(outcomes.filter { if case .rotated = $0 { true } else { false } }.count, 1, "\(outcomes)")
    }

    func sessionsRevokeByScope() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createUser(user("acme", "u1", "ann@example.com"), token: nil)
        for id in ["s1", "s2", "s3"] {
            try await store.createSession(tenant: "acme", id: id, userID: "u1", refresh: refresh("acme", "t-\(id)", user: "u1", session: id))
        }
        try await store.revokeSessions(tenant: "acme", userID: "u1", scope: .only("s1"), at: Date())
        try await assertFalse(try await store.sessionIsActive(tenant: "acme", id: "s1"))
        try await assertTrue(try await store.sessionIsActive(tenant: "acme", id: "s2"))
        try await store.revokeSessions(tenant: "acme", userID: "u1", scope: .allBut("s3"), at: Date())
        try await assertFalse(try await store.sessionIsActive(tenant: "acme", id: "s2"))
        try await assertTrue(try await store.sessionIsActive(tenant: "acme", id: "s3"))
        try await store.revokeSessions(tenant: "acme", userID: "u1", scope: .all, at: Date())
        try await assertFalse(try await store.sessionIsActive(tenant: "acme", id: "s3"))
    }

    func identitiesLinkToUsers() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createUser(user("acme", "u1", "ann@example.com"), token: nil)
        try await assertNil(try await store.identityUser(tenant: "acme", provider: "local", subject: "sub-1"))
        try await store.linkIdentity(tenant: "acme", provider: "local", subject: "sub-1", userID: "u1", data: ["email": "ann@example.com"], at: Date())
        try await assertEqual(try await store.identityUser(tenant: "acme", provider: "local", subject: "sub-1"), "u1")
        try await assertEqual(try await store.identities(tenant: "acme", userID: "u1").map(\.provider), ["local"])
    }

    func authSettingsRoundTrip() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await assertTrue(try await store.authSettings("acme") == nil)
        try await assertTrue(try await store.setAuthSettings("acme", document: #"{"autoconfirm":true}"#, sealedSecrets: [1, 2, 3], audit: audit("auth.configure", tenant: "acme")))
        let found = try await store.authSettings("acme")
        let stored = try XCTUnwrap(found)
        XCTAssertEqual(try JSONValue.parse(Array(stored.document.utf8)), ["autoconfirm": true])
        XCTAssertEqual(stored.sealedSecrets, [1, 2, 3])
        try await assertFalse(try await store.setAuthSettings("ghost", document: "{}", sealedSecrets: [], audit: audit("auth.configure", tenant: "ghost")))
    }
}
