;; A hook: stores each event's JSON data under its type with kv_set.
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "kv_set" (func $kv_set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_hook") (param $n i32) (result i32)
    (local $namelen i32)
    (drop (call $input (i32.const 1024) (local.get $n)))
    (local.set $namelen (i32.or
      (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8))
      (i32.load8_u (i32.const 1025))))
    (drop (call $kv_set
      (i32.const 1026) (local.get $namelen)
      (i32.add (i32.const 1026) (local.get $namelen))
      (i32.sub (local.get $n) (i32.add (i32.const 2) (local.get $namelen)))))
    (i32.const 0)))
