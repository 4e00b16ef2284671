;; upgraded.wat — the kernel that upgrade.wat installs in the tests: each run writes
;; "upgraded" to `/who` and to the outbox, and reads (and ignores) the level's messages.
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x10) "/who")
  (data (i32.const 0x20) "upgraded")
  (func (export "kernel_run")
    (drop (call $store_write (i32.const 0x10) (i32.const 4) (i32.const 0) (i32.const 0x20)
      (i32.const 8)))
    (drop (call $write_output (i32.const 0x20) (i32.const 8)))
    (loop $drain
      (br_if $drain (i32.gt_s
        (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096))
        (i32.const 0)))))
)
