;; unknown_import.wat — not a valid kernel: it imports a function `smart_rollup_core` does
;; not have, so linking fails.
(module
  (import "smart_rollup_core" "no_such_function" (func $f (param i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (func (export "kernel_run")
    (drop (call $f (i32.const 0)))))
