;; mw_loop: a hostile http-wasm middleware that never returns: from handle_request when its config is "request", else from handle_response.
(module
  (import "http_handler" "get_config" (func $get_config (param $buf i32) (param $limit i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 16) "request")
  (func $spin (loop $forever (br $forever)))
  (func $in_request (result i32)
    (if (i32.ne (call $get_config (i32.const 0) (i32.const 16)) (i32.const 7)) (then (return (i32.const 0))))
    (i64.eq (i64.load (i32.const 0)) (i64.load (i32.const 16))))
  (func (export "handle_request") (result i64)
    (if (call $in_request) (then (call $spin)))
    (i64.const 1))
  (func (export "handle_response") (param $reqCtx i32) (param $is_error i32)
    (call $spin)))
