;; Longest Collatz chain below N: loops, calls, i64 arithmetic, and a memory cache.
;; Used by `soru demo` (engine stage) and the engine tests.
(module
  (memory (export "memory") 4)
  ;; steps(n): number of Collatz steps from n down to 1, cached in memory for n < 65536.
  (func $steps (export "steps") (param $n i64) (result i32)
    (local $count i32)
    (block $done
      (loop $next
        (br_if $done (i64.eq (local.get $n) (i64.const 1)))
        (if (i64.lt_u (local.get $n) (i64.const 65536))
          (then
            (if (i32.load (i32.shl (i32.wrap_i64 (local.get $n)) (i32.const 2)))
              (then
                (local.set $count (i32.add (local.get $count)
                  (i32.load (i32.shl (i32.wrap_i64 (local.get $n)) (i32.const 2)))))
                (br $done)))))
        (local.set $n
          (if (result i64) (i64.eqz (i64.and (local.get $n) (i64.const 1)))
            (then (i64.shr_u (local.get $n) (i64.const 1)))
            (else (i64.add (i64.mul (local.get $n) (i64.const 3)) (i64.const 1)))))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (br $next)))
    (local.get $count))
  ;; longest(limit): the start below limit with the longest chain (filling the cache).
  (func (export "longest") (param $limit i32) (result i32)
    (local $i i32) (local $best i32) (local $best_len i32) (local $len i32)
    (local.set $i (i32.const 1))
    (block $out
      (loop $scan
        (br_if $out (i32.ge_u (local.get $i) (local.get $limit)))
        (local.set $len (call $steps (i64.extend_i32_u (local.get $i))))
        (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $len))
        (if (i32.gt_u (local.get $len) (local.get $best_len))
          (then (local.set $best_len (local.get $len)) (local.set $best (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.get $best)))
