;; Imports a host function the host does not have.
(module
  (import "portico" "teleport" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param i32) (result i32) (i32.const 0)))
