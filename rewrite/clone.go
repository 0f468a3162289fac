package rewrite

// cloneExpr deep-copies an expression so that binding a cached Analysis to a
// catalog never writes to the shared tree.
func cloneExpr(e *expr) *expr {
	if e == nil {
		return nil
	}
	c := *e
	c.col = nil
	c.private, c.memo = true, ""
	c.caseArg = cloneExpr(e.caseArg)
	c.filter = cloneExpr(e.filter)
	if e.args != nil {
		c.args = make([]*expr, len(e.args))
		for i, a := range e.args {
			c.args[i] = cloneExpr(a)
		}
	}
	return &c
}

func cloneCore(s *selectCore) *selectCore {
	c := *s
	c.from = make([]*tableRef, len(s.from))
	for i, t := range s.from {
		tc := *t
		tc.on = cloneExpr(t.on)
		c.from[i] = &tc
	}
	c.targets = make([]target, len(s.targets))
	for i, t := range s.targets {
		c.targets[i] = target{expr: cloneExpr(t.expr), name: t.name}
	}
	c.where = cloneExpr(s.where)
	c.groupBy = make([]*expr, len(s.groupBy))
	for i, g := range s.groupBy {
		c.groupBy[i] = cloneExpr(g)
	}
	c.having = cloneExpr(s.having)
	c.orderBy = make([]sortItem, len(s.orderBy))
	for i, o := range s.orderBy {
		c.orderBy[i] = sortItem{expr: cloneExpr(o.expr), desc: o.desc, nulls: o.nulls}
	}
	return &c
}
