;; mw_hugeheader: a hostile http-wasm middleware that sets a 1 MiB response header value.
(module
  (import "http_handler" "set_header_value"
    (func $set_header_value (param $kind i32) (param $name i32) (param $name_len i32) (param $value i32) (param $value_len i32)))
  (memory (export "memory") 17 17)
  (data (i32.const 0) "X-Huge")
  (func (export "handle_request") (result i64)
    (memory.fill (i32.const 64) (i32.const 97) (i32.const 1048576))
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 6) (i32.const 64) (i32.const 1048576))
    (i64.const 1))
  (func (export "handle_response") (param $reqCtx i32) (param $is_error i32)))
