package core_test

import "github.com/porticohq/portico/core/internal/audit"

func audit_query(action string) audit.Query { return audit.Query{Action: action} }
