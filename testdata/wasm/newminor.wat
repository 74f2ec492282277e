;; Needs ABI v1.5, newer than the host.
(module
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65541))
  (func (export "portico_skill") (param i32) (result i32) (i32.const 0)))
