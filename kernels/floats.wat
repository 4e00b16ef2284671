;; floats.wat — not a valid kernel: it uses a floating-point instruction, which the PVM's
;; decoder rejects (Tezos decodes kernels with floats forbidden).
(module
  (memory 1)
  (export "memory" (memory 0))
  (func (export "kernel_run")
    (drop (f32.add (f32.const 1) (f32.const 2)))))
