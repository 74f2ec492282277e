;; Calls the skill "target" with its own payload and answers with the reply,
;; or with the host's negative result as 4 little-endian bytes.
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (import "portico" "call_skill" (func $call_skill (param i32 i32 i32 i32) (result i32)))
  (import "portico" "result" (func $skill_result (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "target")
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (local $r i32) (local $namelen i32)
    ;; the envelope goes to 1024; the payload starts after 2 + name length
    (drop (call $input (i32.const 1024) (local.get $n)))
    (local.set $namelen (i32.or
      (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8))
      (i32.load8_u (i32.const 1025))))
    (local.set $r (call $call_skill (i32.const 0) (i32.const 6)
      (i32.add (i32.const 1026) (local.get $namelen))
      (i32.sub (local.get $n) (i32.add (i32.const 2) (local.get $namelen)))))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then
        (i32.store (i32.const 16) (local.get $r))
        (drop (call $output (i32.const 16) (i32.const 4)))
        (return (i32.const 0))))
    (drop (call $skill_result (i32.const 65536) (local.get $r)))
    (drop (call $output (i32.const 65536) (local.get $r)))
    (i32.const 0)))
