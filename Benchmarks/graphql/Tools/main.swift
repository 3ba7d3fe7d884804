import Connectors
import Foundation
import GraphQL

// Builds the service role's GraphQL schema for a model of N tables (each with six columns, a key
// and a foreign key to the previous one) and prints the seconds it took: the contract's "schema
// for 10,000 tables in < 3 s" (Benchmarks/graphql/run.sh).
let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 10_000
var entities: [Entity] = []
var relations: [Relation] = []
for index in 0..<count {
    let name = "table_\(index)"
    entities.append(Entity(schema: "public", name: name, kind: .table, columns: [
        Column(name: "id", type: .integer, nativeType: "integer", nullable: false),
        Column(name: "name", type: .string, nativeType: "text", nullable: false),
        Column(name: "amount", type: .number, nativeType: "numeric"),
        Column(name: "created_at", type: .datetime, nativeType: "timestamp with time zone"),
        Column(name: "meta", type: .json, nativeType: "jsonb"),
        Column(name: "previous_id", type: .integer, nativeType: "integer"),
    ], primaryKey: ["id"]))
    if index > 0 {
        let from = EntityName(schema: "public", name: name), to = EntityName(schema: "public", name: "table_\(index - 1)")
        relations.append(Relation(constraint: "\(name)_previous", kind: .manyToOne, from: from, fromColumns: ["previous_id"], to: to, toColumns: ["id"]))
        relations.append(Relation(constraint: "\(name)_previous", kind: .oneToMany, from: to, fromColumns: ["id"], to: from, toColumns: ["previous_id"]))
    }
}
let model = SchemaModel(entities: entities, relations: relations)
let started = Date()
let schema = RoleSchemaBuilder(model: model, access: .service, naming: GraphQLNaming(inflect: false)).build()
let seconds = Date().timeIntervalSince(started)
print(String(format: "%d tables: %d types, built in %.3f s", count, schema.types.count, seconds))
