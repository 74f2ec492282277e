;; mw_nomemory: exports no memory, so the host could not pass it anything; the load is refused.
(module
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
