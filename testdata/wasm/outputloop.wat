;; Writes 64 KiB chunks with output forever, ignoring the host's refusal (the host must end the call at its next output, not at the call timeout).
(module
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param i32) (result i32)
    (loop $more
      (drop (call $output (i32.const 0) (i32.const 65536)))
      (br $more))
    (i32.const 0)))
