;; reverse: a first-party skill written by hand in WebAssembly text, to show
;; the ABI is language-neutral. It answers with its payload's bytes in
;; reverse order ("abc" -> "cba" for a JSON string of ASCII letters).
;; Build: wat2wasm reverse.wat -o reverse.wasm
(module
  (import "portico" "input" (func $input (param i32 i32) (result i32)))
  (import "portico" "output" (func $output (param i32 i32) (result i32)))
  (import "portico" "fail" (func $fail (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "input too large")
  (func (export "portico_abi_version") (result i32) (i32.const 65536))
  (func (export "portico_skill") (param $n i32) (result i32)
    (local $start i32) (local $end i32) (local $i i32) (local $out i32)
    ;; one page for the envelope at 1024, one for the reply at 65536
    (if (i32.gt_u (local.get $n) (i32.const 60000))
      (then (call $fail (i32.const 0) (i32.const 15)) (return (i32.const 2))))
    (drop (call $input (i32.const 1024) (local.get $n)))
    ;; skip the name: 2-byte big-endian length + name
    (local.set $start (i32.add (i32.const 1026)
      (i32.or (i32.shl (i32.load8_u (i32.const 1024)) (i32.const 8)) (i32.load8_u (i32.const 1025)))))
    (local.set $end (i32.add (i32.const 1024) (local.get $n)))
    (local.set $i (local.get $end))
    (local.set $out (i32.const 65536))
    (block $done
      (loop $copy
        (br_if $done (i32.le_u (local.get $i) (local.get $start)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (i32.store8 (local.get $out) (i32.load8_u (local.get $i)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $copy)))
    (drop (call $output (i32.const 65536) (i32.sub (local.get $out) (i32.const 65536))))
    (i32.const 0)))
