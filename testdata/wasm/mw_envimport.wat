;; mw_envimport: imports env.abort, from a module this host does not provide, so the load is refused.
(module
  (import "env" "abort" (func (param i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
