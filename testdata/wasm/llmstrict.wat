;; Sends its payload to llm_complete and answers with the reply; when the host refuses (a negative result) the skill fails with the host's message, as an SDK skill returning the error does.
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (import "portico" "fail" (func $fail (param i32 i32)))
  (import "portico" "llm_complete" (func $llm (param i32 i32) (result i32)))
  (import "portico" "result" (func $result (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (local $namelen i32) (local $r i32) (local $len i32)
    (drop (call $input (i32.const 1024) (local.get $n)))
    (local.set $namelen (i32.or
      (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8))
      (i32.load8_u (i32.const 1025))))
    (local.set $r (call $llm
      (i32.add (i32.const 1026) (local.get $namelen))
      (i32.sub (local.get $n) (i32.add (i32.const 2) (local.get $namelen)))))
    (local.set $len (call $result (i32.const 131072) (i32.const 65536)))
    (local.set $len (select (local.get $len) (i32.const 65536) (i32.lt_u (local.get $len) (i32.const 65536))))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then
        (call $fail (i32.const 131072) (local.get $len))
        (return (i32.const 1))))
    (drop (call $output (i32.const 131072) (local.get $len)))
    (i32.const 0)))
