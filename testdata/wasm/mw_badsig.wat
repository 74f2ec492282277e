;; mw_badsig: handle_request returns i32 instead of http-wasm's i64 (ctx_next), so the load is refused.
(module
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i32) (i32.const 1))
  (func (export "handle_response") (param i32 i32)))
