;; Logs a message whose length runs far past its memory (the host must trap, as for any pointer out of range, not read the first 4 KiB).
(module
  (import "portico" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param i32) (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 0x7fffffff))
    (i32.const 0)))
