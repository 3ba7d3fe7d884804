import PostgresNIO

/// Database errors keep their SQLSTATE and get PostgREST's HTTP status for it.
enum PostgresErrorMapping {
    static func status(for sqlState: String) -> Int {
        switch sqlState {
        case "23503", "23505": return 409
        case "25006": return 405
        case "42883", "42P01": return 404
        case "42501": return 403
        case "P0001": return 400
        case "57014": return 504
        default: break
        }
        switch sqlState.prefix(2) {
        case "08": return 503
        case "09", "25", "2D", "38", "39", "3B", "40", "55", "57", "58", "F0", "HV", "P0", "XX": return 500
        case "0L", "0P", "28": return 403
        case "53": return 503
        case "54": return 413
        default: return 400
        }
    }

    static func restError(_ error: PSQLError, source: String) -> RestError {
        guard let info = error.serverInfo, let state = info[.sqlState] else {
            return RestError(
                status: 503, code: "MB602", message: "source '\(source)' is unreachable",
                details: "\(error.code)".replacingOccurrences(of: "PSQLError.Code.", with: ""), hint: "retry shortly")
        }
        return RestError(status: status(for: state), code: state, message: info[.message] ?? "database error", details: info[.detail], hint: info[.hint])
    }
}
