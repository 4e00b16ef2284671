;; no_kernel_run.wat — not a valid kernel: it decodes, links and initialises, but exports
;; no function `kernel_run` (only `main`).
(module
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main")))
