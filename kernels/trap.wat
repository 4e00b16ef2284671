;; trap.wat — traps on demand: an external message whose second byte names a fault makes
;; kernel_run trap ('u' unreachable, 'z' integer divide by zero, 'o' integer overflow,
;; 'm' out-of-bounds memory access, 'n' call_indirect to an empty table slot, 't'
;; call_indirect with the wrong type), after writing the message to `/last`, so that the
;; PVM sets `/readonly/kernel/env/stuck` and the rollup goes on at the next level.
;;
;; Each run adds one to `/runs` (u32 LE) and, when `/readonly/kernel/env/stuck` exists,
;; writes its run number to `/saw_stuck`.
;;
;; Memory: 0x010 "/runs" 0x020 "/readonly/kernel/env/stuck" 0x040 "/saw_stuck" 0x050 "/last"
;; 0x100 input info, 0x200 the run count, 0x1000 the message.
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_read"
    (func $store_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_has" (func $store_has (param i32 i32) (result i32)))

  (type $nullary (func))
  (type $unary (func (param i32)))
  (table 2 funcref)
  (elem (i32.const 1) $nothing)
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x010) "/runs")
  (data (i32.const 0x020) "/readonly/kernel/env/stuck")
  (data (i32.const 0x040) "/saw_stuck")
  (data (i32.const 0x050) "/last")

  (func $nothing (type $nullary))

  (func $fault (param $kind i32)
    (if (i32.eq (local.get $kind) (i32.const 0x75)) ;; 'u'
      (then unreachable))
    (if (i32.eq (local.get $kind) (i32.const 0x7A)) ;; 'z'
      (then (drop (i32.div_u (i32.const 1) (i32.load8_u (i32.const 0xFFFF))))))
    (if (i32.eq (local.get $kind) (i32.const 0x6F)) ;; 'o'
      (then (drop (i32.div_s (i32.const 0x80000000) (i32.const -1)))))
    (if (i32.eq (local.get $kind) (i32.const 0x6D)) ;; 'm'
      (then (drop (i32.load (i32.const 0xFFFD)))))
    (if (i32.eq (local.get $kind) (i32.const 0x6E)) ;; 'n'
      (then (call_indirect (type $nullary) (i32.const 0))))
    (if (i32.eq (local.get $kind) (i32.const 0x74)) ;; 't'
      (then (call_indirect (type $unary) (i32.const 7) (i32.const 1)))))

  (func (export "kernel_run")
    (local $size i32)
    (drop (call $store_read (i32.const 0x010) (i32.const 5) (i32.const 0) (i32.const 0x200)
      (i32.const 4)))
    (i32.store (i32.const 0x200) (i32.add (i32.load (i32.const 0x200)) (i32.const 1)))
    (drop (call $store_write (i32.const 0x010) (i32.const 5) (i32.const 0) (i32.const 0x200)
      (i32.const 4)))
    (if (call $store_has (i32.const 0x020) (i32.const 26))
      (then
        (drop (call $store_write (i32.const 0x040) (i32.const 10) (i32.const 0)
          (i32.const 0x200) (i32.const 4)))))
    (loop $next_message
      (local.set $size
        (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096)))
      (if (i32.gt_s (local.get $size) (i32.const 1))
        (then
          (if (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 1))
            (then
              (drop (call $store_write (i32.const 0x050) (i32.const 5) (i32.const 0)
                (i32.const 0x1000) (local.get $size)))
              (call $fault (i32.load8_u (i32.const 0x1001)))))
          (br $next_message)))))
)
