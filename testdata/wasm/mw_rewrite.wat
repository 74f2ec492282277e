;; mw_rewrite: an http-wasm middleware (a TinyGo-style command: _start enables buffer_response) that upper-cases the response body in handle_response and marks it with "X-Rewritten: upper"; reqCtx 7 must come back.
(module
  (import "http_handler" "enable_features" (func $enable_features (param $features i32) (result i32)))
  (import "http_handler" "read_body" (func $read_body (param $kind i32) (param $buf i32) (param $limit i32) (result i64)))
  (import "http_handler" "write_body" (func $write_body (param $kind i32) (param $buf i32) (param $len i32)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param $kind i32) (param $name i32) (param $name_len i32) (param $value i32) (param $value_len i32)))
  (memory (export "memory") 2 2)
  (data (i32.const 0) "X-Rewritten")
  (data (i32.const 16) "upper")
  (func (export "_start")
    ;; buffer_response (2) must be granted at start
    (if (i32.eqz (i32.and (call $enable_features (i32.const 2)) (i32.const 2)))
      (then unreachable)))
  (func (export "handle_request") (result i64)
    (i64.or (i64.shl (i64.const 7) (i64.const 32)) (i64.const 1))) ;; reqCtx 7, next
  (func (export "handle_response") (param $reqCtx i32) (param $is_error i32)
    (local $res i64) (local $len i32) (local $i i32) (local $c i32)
    (if (i32.ne (local.get $reqCtx) (i32.const 7)) (then unreachable))
    (if (local.get $is_error) (then (return)))
    ;; the whole body into [1024, 131072), or trap
    (local.set $res (call $read_body (i32.const 1) (i32.const 1024) (i32.const 130048)))
    (if (i64.eqz (i64.and (local.get $res) (i64.const 0x100000000))) (then unreachable))
    (local.set $len (i32.wrap_i64 (local.get $res)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (i32.const 1024) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (call $write_body (i32.const 1) (i32.const 1024) (local.get $len))
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 11) (i32.const 16) (i32.const 5))))
