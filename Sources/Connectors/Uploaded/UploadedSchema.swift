import Runtime

/// A schema document a tenant uploads instead of letting us introspect a database, read into the
/// same model. Errors say where in the document (line and column, or a JSON pointer).
public enum UploadedSchema {
    public enum Format: String, Sendable, CaseIterable {
        case sql, prisma, jsonschema, openapi
    }

    public struct Parsed: Sendable {
        public var model: SchemaModel
        /// Statements or parts that were read but not modelled, each naming where it is.
        public var warnings: [String]
    }

    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        /// "line 3, column 7", or a JSON pointer.
        public var location: String
        public var description: String { "\(location): \(message)" }
    }

    public static let maxDocumentBytes = SQLTokenizer.maxBytes

    public static func parse(_ document: String, format: Format) throws(Failure) -> Parsed {
        switch format {
        case .sql:
            do {
                let (model, warnings) = try SQLSchemaParser.parse(document)
                return Parsed(model: model, warnings: warnings)
            } catch {
                throw Failure(message: error.message, location: "line \(error.line), column \(error.column)")
            }
        case .prisma:
            do {
                let (model, warnings) = try PrismaSchemaParser.parse(document)
                return Parsed(model: model, warnings: warnings)
            } catch {
                throw Failure(message: error.message, location: "line \(error.line), column \(error.column)")
            }
        case .jsonschema, .openapi:
            do {
                let (model, warnings) = try JSONSchemaReader.read(document, openAPI: format == .openapi)
                return Parsed(model: model, warnings: warnings)
            } catch {
                throw Failure(message: error.message, location: error.pointer.isEmpty ? "/" : error.pointer)
            }
        }
    }
}
