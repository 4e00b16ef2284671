;; upgrade.wat — installs the kernel it is sent: the payload of an external message replaces
;; `/kernel/boot.wasm` (written in 2048-byte pieces) and the kernel asks for a reboot, so the
;; new kernel runs next — or, if it cannot be loaded, the PVM restores this one as the
;; fallback and sets `/readonly/kernel/env/upgrade_error`.
;;
;; Each run writes "upgrader" to `/who`, and writes `/saw_upgrade_error` (empty) when it
;; finds `/readonly/kernel/env/upgrade_error`.
;;
;; Memory: 0x010 "/kernel/boot.wasm" 0x030 "/kernel/env/reboot" 0x050 "/who"
;; 0x060 "upgrader" 0x070 "/readonly/kernel/env/upgrade_error" 0x0A0 "/saw_upgrade_error"
;; 0x100 input info, 0x1000 the message (so the new kernel is at 0x1001).
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_delete" (func $store_delete (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_has" (func $store_has (param i32 i32) (result i32)))

  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x010) "/kernel/boot.wasm")
  (data (i32.const 0x030) "/kernel/env/reboot")
  (data (i32.const 0x050) "/who")
  (data (i32.const 0x060) "upgrader")
  (data (i32.const 0x070) "/readonly/kernel/env/upgrade_error")
  (data (i32.const 0x0A0) "/saw_upgrade_error")

  (func $install (param $size i32)
    (local $offset i32)
    (local $chunk i32)
    (drop (call $store_delete (i32.const 0x010) (i32.const 17)))
    (loop $write
      (local.set $chunk (i32.sub (local.get $size) (local.get $offset)))
      (if (i32.gt_u (local.get $chunk) (i32.const 2048))
        (then (local.set $chunk (i32.const 2048))))
      (drop (call $store_write (i32.const 0x010) (i32.const 17) (local.get $offset)
        (i32.add (i32.const 0x1001) (local.get $offset)) (local.get $chunk)))
      (local.set $offset (i32.add (local.get $offset) (local.get $chunk)))
      (br_if $write (i32.lt_u (local.get $offset) (local.get $size))))
    (drop (call $store_write (i32.const 0x030) (i32.const 18) (i32.const 0) (i32.const 0)
      (i32.const 0))))

  (func (export "kernel_run")
    (local $size i32)
    (drop (call $store_write (i32.const 0x050) (i32.const 4) (i32.const 0) (i32.const 0x060)
      (i32.const 8)))
    (if (call $store_has (i32.const 0x070) (i32.const 34))
      (then
        (drop (call $store_write (i32.const 0x0A0) (i32.const 18) (i32.const 0) (i32.const 0)
          (i32.const 0)))))
    (loop $next_message
      (local.set $size
        (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096)))
      (if (i32.gt_s (local.get $size) (i32.const 0))
        (then
          (if (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 1))
            (then (call $install (i32.sub (local.get $size) (i32.const 1)))))
          (br $next_message)))))
)
