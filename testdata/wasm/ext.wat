;; Sends its payload to the embedder's host function test.lookup (added with
;; Runtime.AddHostFuncs) and answers with the result code as 4 little-endian
;; bytes followed by the result (the reply or the error message).
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (import "test" "lookup" (func $lookup (param i32 i32) (result i32)))
  (import "portico" "result" (func $result (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (local $namelen i32) (local $len i32)
    (drop (call $input (i32.const 1024) (local.get $n)))
    (local.set $namelen (i32.or
      (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8))
      (i32.load8_u (i32.const 1025))))
    (i32.store (i32.const 16) (call $lookup
      (i32.add (i32.const 1026) (local.get $namelen))
      (i32.sub (local.get $n) (i32.add (i32.const 2) (local.get $namelen)))))
    (drop (call $output (i32.const 16) (i32.const 4)))
    (local.set $len (call $result (i32.const 131072) (i32.const 65536)))
    (drop (call $output (i32.const 131072) (select (local.get $len) (i32.const 65536) (i32.lt_u (local.get $len) (i32.const 65536)))))
    (i32.const 0)))
