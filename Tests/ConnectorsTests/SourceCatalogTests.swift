import XCTest
@testable import Connectors
@testable import Tenancy

final class SourceCatalogTests: XCTestCase {
    /// The URL sealed for a source must give back the same connection, however odd the password.
    func testSealedURLRoundTripsCredentials() throws {
        for password in ["plain", "p@ss:w/rd?#%", "spaces and ünïcode", "a\"b'c"] {
            let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
            let url = try PostgresURL("postgresql://us%40er:\(encoded)@db.example.com:6543/app?sslmode=require")
            let registration = SourceCatalog.PostgresRegistration(name: "main", kind: "postgres", url: url, schemas: ["public"], maxConnections: 5)
            let reparsed = try PostgresURL(registration.urlText)
            XCTAssertEqual(reparsed, url, password)
            XCTAssertEqual(reparsed.password, password)
            XCTAssertEqual(reparsed.username, "us@er")
        }
    }
}
