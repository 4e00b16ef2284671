;; loop.wat — never returns: kernel_run loops forever, so the top-level call reaches its tick
;; budget outside Padding and the PVM is stuck for good ("too many ticks").
(module
  (memory 1)
  (export "memory" (memory 0))
  (func (export "kernel_run")
    (loop $forever (br $forever))))
