;; mw_badimport: imports http_handler.get_cookie, which the http-wasm handler ABI does not define, so the load is refused.
(module
  (import "http_handler" "get_cookie" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
