;; A skill that answers "v1" whatever it is asked (pack upgrade tests).
(module
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "v1")
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (drop (call $output (i32.const 0) (i32.const 2)))
    (i32.const 0)))
