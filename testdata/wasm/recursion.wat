;; Recurses until the stack overflows.
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func $down (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "portico_skill") (param i32) (result i32)
    (call $down (i32.const 0))))
