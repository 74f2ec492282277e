;; Skill "again" calls "again" with its own payload (recursing until the host refuses) and answers with the host's first negative result as 4 little-endian bytes; any other skill answers with its payload.
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (import "portico" "call_skill" (func $call_skill (param i32 i32 i32 i32) (result i32)))
  (import "portico" "result" (func $skill_result (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "again")
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (local $r i32) (local $namelen i32) (local $payload i32) (local $plen i32)
    ;; the envelope goes to 1024: a 2-byte name length, the name, the payload
    (drop (call $input (i32.const 1024) (local.get $n)))
    (local.set $namelen (i32.or
      (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8))
      (i32.load8_u (i32.const 1025))))
    (local.set $payload (i32.add (i32.const 1026) (local.get $namelen)))
    (local.set $plen (i32.sub (local.get $n) (i32.add (i32.const 2) (local.get $namelen))))
    ;; not "again" (length 5 and first byte 'a'): echo the payload
    (if (i32.or (i32.ne (local.get $namelen) (i32.const 5))
                (i32.ne (i32.load8_u (i32.const 1026)) (i32.const 97)))
      (then
        (drop (call $output (local.get $payload) (local.get $plen)))
        (return (i32.const 0))))
    (local.set $r (call $call_skill (i32.const 0) (i32.const 5) (local.get $payload) (local.get $plen)))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then
        (i32.store (i32.const 16) (local.get $r))
        (drop (call $output (i32.const 16) (i32.const 4)))
        (return (i32.const 0))))
    ;; a deeper level answered: pass its answer up
    (drop (call $skill_result (i32.const 65536) (local.get $r)))
    (drop (call $output (i32.const 65536) (local.get $r)))
    (i32.const 0)))
