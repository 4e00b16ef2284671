;; start_host_call.wat — not a valid kernel: its start function calls a host function, which
;; Tezos refuses during initialisation ("host functions must not access memory during
;; initialisation", an init error). If it ran, the start function would write "start" to the
;; outbox.
(module
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0) "start")
  (func $start
    (drop (call $write_output (i32.const 0) (i32.const 5))))
  (start $start)
  (func (export "kernel_run")))
