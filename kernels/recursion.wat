;; recursion.wat — recurses without bound: kernel_run calls itself until the call stack
;; limit (60 000 frames), and the PVM is stuck for good ("call stack exhausted").
(module
  (memory 1)
  (export "memory" (memory 0))
  (func $kernel_run (export "kernel_run")
    (call $kernel_run)))
