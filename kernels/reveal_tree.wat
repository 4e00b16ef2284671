;; reveal_tree.wat — fetches a tree of preimage pages (SORU-SPEC §6) and stores its data: an
;; external message carries a 33-byte root reveal hash after its tag; the kernel walks the
;; tree depth first with `reveal_preimage` (content page 0x00 ‖ u32 BE length ‖ data: append
;; the data; hash page 0x01 ‖ u32 BE length ‖ 33-byte hashes: walk each) and writes the
;; reassembled data to `/data`, in pieces of at most 2048 bytes. A malformed page, or a tree
;; deeper than 10 levels, traps.
;;
;; Memory: 0x010 "/data"; 0x100 input info; 0x1000 the message (root hash at 0x1001);
;; 0x4000 + 0x1000 × depth: the page being walked at that depth.
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_preimage"
    (func $reveal_preimage (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_delete" (func $store_delete (param i32 i32) (result i32)))

  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x010) "/data")
  (global $written (mut i32) (i32.const 0))

  ;; append $size bytes at $src to /data
  (func $append (param $src i32) (param $size i32)
    (local $chunk i32)
    (loop $write
      (local.set $chunk (local.get $size))
      (if (i32.gt_u (local.get $chunk) (i32.const 2048))
        (then (local.set $chunk (i32.const 2048))))
      (if (call $store_write (i32.const 0x010) (i32.const 5) (global.get $written)
            (local.get $src) (local.get $chunk))
        (then unreachable))
      (global.set $written (i32.add (global.get $written) (local.get $chunk)))
      (local.set $src (i32.add (local.get $src) (local.get $chunk)))
      (local.set $size (i32.sub (local.get $size) (local.get $chunk)))
      (br_if $write (local.get $size))))

  ;; a big-endian u32
  (func $u32_be (param $at i32) (result i32)
    (i32.or
      (i32.or
        (i32.shl (i32.load8_u (local.get $at)) (i32.const 24))
        (i32.shl (i32.load8_u offset=1 (local.get $at)) (i32.const 16)))
      (i32.or
        (i32.shl (i32.load8_u offset=2 (local.get $at)) (i32.const 8))
        (i32.load8_u offset=3 (local.get $at)))))

  (func $walk (param $hash i32) (param $depth i32)
    (local $page i32)
    (local $size i32)
    (local $length i32)
    (local $child i32)
    (if (i32.ge_u (local.get $depth) (i32.const 10)) (then unreachable))
    (local.set $page (i32.add (i32.const 0x4000) (i32.shl (local.get $depth) (i32.const 12))))
    (local.set $size
      (call $reveal_preimage (local.get $hash) (i32.const 33) (local.get $page)
        (i32.const 4096)))
    (if (i32.lt_s (local.get $size) (i32.const 5)) (then unreachable))
    (local.set $length (call $u32_be (i32.add (local.get $page) (i32.const 1))))
    (if (i32.ne (i32.add (local.get $length) (i32.const 5)) (local.get $size))
      (then unreachable))
    (if (i32.eqz (i32.load8_u (local.get $page)))
      (then
        (if (local.get $length)
          (then (call $append (i32.add (local.get $page) (i32.const 5)) (local.get $length))))
        (return)))
    (if (i32.ne (i32.load8_u (local.get $page)) (i32.const 1)) (then unreachable))
    (local.set $child (i32.add (local.get $page) (i32.const 5)))
    (loop $children
      (if (i32.lt_s (local.get $length) (i32.const 33)) (then (return)))
      (call $walk (local.get $child) (i32.add (local.get $depth) (i32.const 1)))
      (local.set $child (i32.add (local.get $child) (i32.const 33)))
      (local.set $length (i32.sub (local.get $length) (i32.const 33)))
      (br $children)))

  (func (export "kernel_run")
    (local $size i32)
    (loop $next_message
      (local.set $size
        (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096)))
      (if (i32.gt_s (local.get $size) (i32.const 0))
        (then
          (if (i32.and
                (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 1))
                (i32.eq (local.get $size) (i32.const 34)))
            (then
              (drop (call $store_delete (i32.const 0x010) (i32.const 5)))
              (global.set $written (i32.const 0))
              (call $walk (i32.const 0x1001) (i32.const 0))))
          (br $next_message)))))
)
