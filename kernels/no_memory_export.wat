;; no_memory_export.wat — not a valid kernel: it has a memory but does not export it, and
;; Tezos requires memory 0 to be exported ("Module must export memory 0", an init error).
;; If it ran, it would write "ran" to the outbox.
(module
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "ran")
  (func (export "kernel_run")
    (drop (call $write_output (i32.const 0) (i32.const 3)))))
