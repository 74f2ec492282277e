;; Reports a skill error with a message.
(module
  (import "portico" "fail" (func $fail (param i32 i32)))
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (data (i32.const 100) "no such city")
  (func (export "portico_skill") (param i32) (result i32)
    (call $fail (i32.const 100) (i32.const 12))
    (i32.const 1)))
