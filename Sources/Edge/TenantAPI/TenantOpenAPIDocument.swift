import Runtime
import Tenancy

/// The OpenAPI 3 description of a tenant's REST surface. Paths come from the tenant's schema model;
/// with no sources registered yet there are none, and the document says how to authenticate.
struct TenantOpenAPIDocument {
    let tenant: Tenant
    let restURL: String

    func json() -> JSONValue {
        [
            "openapi": "3.0.3",
            "info": [
                "title": .string("\(tenant.name) — mini-baas REST API"),
                "version": "1",
                "description": "Generated from the tenant's data sources. Send the tenant's API key in the apikey header.",
            ],
            "servers": [["url": .string(restURL)]],
            "paths": [:],
            "components": [
                "schemas": [:],
                "securitySchemes": [
                    "apikey": ["type": "apiKey", "in": "header", "name": "apikey"],
                    "bearer": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"],
                ],
            ],
            "security": [["apikey": []], ["apikey": [], "bearer": []]],
        ]
    }
}
