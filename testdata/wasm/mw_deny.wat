;; mw_deny: an http-wasm middleware that ends every request itself with 403, a text/plain body, and no call to the next handler.
(module
  (import "http_handler" "set_header_value"
    (func $set_header_value (param $kind i32) (param $name i32) (param $name_len i32) (param $value i32) (param $value_len i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param $status i32)))
  (import "http_handler" "write_body" (func $write_body (param $kind i32) (param $buf i32) (param $len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "Content-Type")
  (data (i32.const 16) "text/plain")
  (data (i32.const 32) "denied by middleware\n")
  (func (export "handle_request") (result i64)
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 10))
    (call $set_status_code (i32.const 403))
    (call $write_body (i32.const 1) (i32.const 32) (i32.const 21))
    (i64.const 0)) ;; the guest answered: no next
  ;; never called: the request ended in handle_request
  (func (export "handle_response") (param $reqCtx i32) (param $is_error i32)
    unreachable))
