;; mw_headers: an http-wasm middleware that sets the request header "X-Portico-Mw: on" and the response header "X-Frame-Options: DENY", then passes the request on.
(module
  (import "http_handler" "set_header_value"
    (func $set_header_value (param $kind i32) (param $name i32) (param $name_len i32) (param $value i32) (param $value_len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Portico-Mw")
  (data (i32.const 16) "on")
  (data (i32.const 32) "X-Frame-Options")
  (data (i32.const 48) "DENY")
  (func (export "handle_request") (result i64)
    (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 2))  ;; request
    (call $set_header_value (i32.const 1) (i32.const 32) (i32.const 15) (i32.const 48) (i32.const 4)) ;; response
    (i64.const 1)) ;; next
  (func (export "handle_response") (param $reqCtx i32) (param $is_error i32)))
