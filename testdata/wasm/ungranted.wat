;; Writes to kv, which it is not granted; answers the host's result code as
;; 4 little-endian bytes.
(module
  (import "portico" "kv_set" (func $kv_set (param i32 i32 i32 i32) (result i32)))
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param i32) (result i32)
    (i32.store (i32.const 16) (call $kv_set (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
    (drop (call $output (i32.const 16) (i32.const 4)))
    (i32.const 0)))
