;; inventory: the skill "stock" of the example pack, by hand in WebAssembly
;; text. It hands its payload (a JSON string naming an item) to the
;; program's own host function acme.stock and answers with what that
;; returns; a refusal or an error fails the call with the host's message.
;; Build: wat2wasm inventory.wat -o pack/inventory/inventory.wasm
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (import "portico" "fail" (func $fail (param i32 i32)))
  (import "portico" "result" (func $result (param i32 i32) (result i32)))
  (import "acme" "stock" (func $stock (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 0) "input too large")
  (data (i32.const 32) "capability acme.stock is not granted")
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (local $namelen i32) (local $code i32) (local $len i32)
    ;; the envelope goes at 1024 (under 60000 bytes), the reply at 131072
    (if (i32.gt_u (local.get $n) (i32.const 60000))
      (then (call $fail (i32.const 0) (i32.const 15)) (return (i32.const 2))))
    (drop (call $input (i32.const 1024) (local.get $n)))
    ;; skip the skill name: 2-byte big-endian length + name
    (local.set $namelen (i32.or
      (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8))
      (i32.load8_u (i32.const 1025))))
    (local.set $code (call $stock
      (i32.add (i32.const 1026) (local.get $namelen))
      (i32.sub (local.get $n) (i32.add (i32.const 2) (local.get $namelen)))))
    (if (i32.eq (local.get $code) (i32.const -2))
      (then (call $fail (i32.const 32) (i32.const 36)) (return (i32.const 1))))
    (local.set $len (call $result (i32.const 131072) (i32.const 65536)))
    (if (i32.gt_u (local.get $len) (i32.const 65536))
      (then (local.set $len (i32.const 65536))))
    (if (i32.lt_s (local.get $code) (i32.const 0))
      (then (call $fail (i32.const 131072) (local.get $len)) (return (i32.const 1))))
    (drop (call $output (i32.const 131072) (local.get $len)))
    (i32.const 0)))
