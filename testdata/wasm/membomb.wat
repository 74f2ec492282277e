;; Grows its memory until refused, then traps.
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param i32) (result i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
