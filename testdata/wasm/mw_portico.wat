;; mw_portico: an http-wasm middleware that also imports Portico's own host module: it logs with portico.log and stores "seen" with portico.kv_set (denied unless kv is granted), then passes the request on.
(module
  (import "portico" "log" (func $log (param $level i32) (param $ptr i32) (param $len i32)))
  (import "portico" "kv_set" (func $kv_set (param $k i32) (param $klen i32) (param $v i32) (param $vlen i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "hello from middleware")
  (data (i32.const 32) "seen")
  (data (i32.const 48) "yes")
  (func (export "handle_request") (result i64)
    (call $log (i32.const 1) (i32.const 0) (i32.const 21))
    (drop (call $kv_set (i32.const 32) (i32.const 4) (i32.const 48) (i32.const 3)))
    (i64.const 1))
  (func (export "handle_response") (param $reqCtx i32) (param $is_error i32)))
