;; reboot.wat — asks for reboots: counts its kernel_runs in `/count` and sets
;; `/kernel/env/reboot` while the count is below a target, so a level runs the kernel
;; `target − count` more times (the PVM allows 1 + 1000 runs per level).
;;
;; An external message carries the target as u32 LE after its tag; reading one sets
;; `/target` and resets `/count` to 0. Each run also
;;   - appends the reboot counter the PVM exposes (`/readonly/kernel/env/reboot_counter`,
;;     i32 LE) to `/counters`,
;;   - writes its count to `/saw_too_many` when `/readonly/kernel/env/too_many_reboot`
;;     exists.
;;
;; Memory: 0x010 "/target" 0x020 "/count" 0x030 "/kernel/env/reboot"
;; 0x050 "/readonly/kernel/env/reboot_counter" 0x080 "/counters"
;; 0x0A0 "/readonly/kernel/env/too_many_reboot" 0x0D0 "/saw_too_many"
;; 0x100 input info, 0x200 target, 0x204 count, 0x208 reboot counter, 0x1000 input.
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_read"
    (func $store_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_value_size"
    (func $store_value_size (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_has" (func $store_has (param i32 i32) (result i32)))

  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x010) "/target")
  (data (i32.const 0x020) "/count")
  (data (i32.const 0x030) "/kernel/env/reboot")
  (data (i32.const 0x050) "/readonly/kernel/env/reboot_counter")
  (data (i32.const 0x080) "/counters")
  (data (i32.const 0x0A0) "/readonly/kernel/env/too_many_reboot")
  (data (i32.const 0x0D0) "/saw_too_many")

  (func (export "kernel_run")
    (local $size i32)
    ;; a new target from the inbox
    (loop $next_message
      (if (i32.gt_s
            (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096))
            (i32.const 0))
        (then
          (if (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 1))
            (then
              (drop (call $store_write (i32.const 0x010) (i32.const 7) (i32.const 0)
                (i32.const 0x1001) (i32.const 4)))
              (i32.store (i32.const 0x204) (i32.const 0))
              (drop (call $store_write (i32.const 0x020) (i32.const 6) (i32.const 0)
                (i32.const 0x204) (i32.const 4)))))
          (br $next_message))))
    ;; count this run (a missing value reads as zero: memory starts zeroed)
    (drop (call $store_read (i32.const 0x010) (i32.const 7) (i32.const 0) (i32.const 0x200)
      (i32.const 4)))
    (drop (call $store_read (i32.const 0x020) (i32.const 6) (i32.const 0) (i32.const 0x204)
      (i32.const 4)))
    (i32.store (i32.const 0x204) (i32.add (i32.load (i32.const 0x204)) (i32.const 1)))
    (drop (call $store_write (i32.const 0x020) (i32.const 6) (i32.const 0) (i32.const 0x204)
      (i32.const 4)))
    ;; what the PVM says
    (drop (call $store_read (i32.const 0x050) (i32.const 35) (i32.const 0) (i32.const 0x208)
      (i32.const 4)))
    (local.set $size (call $store_value_size (i32.const 0x080) (i32.const 9)))
    (if (i32.lt_s (local.get $size) (i32.const 0)) (then (local.set $size (i32.const 0))))
    (drop (call $store_write (i32.const 0x080) (i32.const 9) (local.get $size) (i32.const 0x208)
      (i32.const 4)))
    (if (call $store_has (i32.const 0x0A0) (i32.const 36))
      (then
        (drop (call $store_write (i32.const 0x0D0) (i32.const 13) (i32.const 0)
          (i32.const 0x204) (i32.const 4)))))
    ;; reboot while below the target
    (if (i32.lt_u (i32.load (i32.const 0x204)) (i32.load (i32.const 0x200)))
      (then
        (drop (call $store_write (i32.const 0x030) (i32.const 18) (i32.const 0)
          (i32.const 0) (i32.const 0))))))
)
