;; Built for ABI v2.
(module
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 131072))
  (func (export "portico_skill") (param i32) (result i32) (i32.const 0)))
