/// Public construction of the REST planner's input, for surfaces that are not the PostgREST URL
/// grammar (GraphQL lowers its selections to these).
extension RestQuery {
    public init(select: [SelectItem]?) {
        self.init()
        self.select = select
    }
}

extension Field {
    public init(column: String) {
        self.init(name: column, path: [])
    }
}

extension Embed {
    public init(relation: Relation, target: String, alias: String, select: [SelectItem]) {
        self.init(relation: target, alias: alias, hint: nil, inner: false, select: select, resolved: relation)
    }
}

extension Filter {
    public init(column: String, op: FilterOperator, value: FilterValue, negated: Bool = false) {
        self.init(field: Field(column: column), negated: negated, op: op, quantifier: nil, language: nil, value: value)
    }
}

extension OrderTerm {
    public init(column: String, descending: Bool, nulls: Nulls) {
        self.init(field: Field(column: column), descending: descending, nulls: nulls)
    }
}
