;; host_calls.wat — a host-call interpreter: every external message is one call of one
;; `smart_rollup_core` host function with arguments chosen by the sender, so tests can reach
;; every host function and every error code it returns from outside the PVM.
;;
;; An external message (tag 0x01, read to 0x1000) is a 52-byte header and data:
;;   +0  0x01            external message tag
;;   +1  u8              host function index (the order of HOST_FUNCTIONS, see below)
;;   +2  u16 LE          repeat: call the function this many times (0 means 1); only the
;;                       last result is logged
;;   +4  u32 LE          dump address: memory to log after the call…
;;   +8  u32 LE          …and its length (at most 2036)
;;   +12 5 × i64 LE      the arguments; i32 parameters take the low 32 bits
;;   +52 …               data, at address 0x1034, for the arguments to point at
;; The header is copied to 0x0200 before the call, so the call may overwrite the message.
;; After the call the kernel appends an entry to the durable value `/log`:
;;   result as i64 LE (i32 results sign-extended; 0 for write_debug) ‖ dump length u32 LE
;;   ‖ the dumped bytes
;; Other messages (the internal SOL, Info_per_level, EOL) are skipped. One kernel_run
;; handles every message of the level, then returns (no reboot).
;;
;; Memory (one page): 0x0010 "/log"; 0x0100 input info; 0x0200 header; 0x1000–0x1FFF the
;; message; 0x2000–0x27FF the log entry; 0x3000–0xFFFF free for the tests.
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (import "smart_rollup_core" "write_debug" (func $write_debug (param i32 i32)))
  (import "smart_rollup_core" "store_has" (func $store_has (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_list_size"
    (func $store_list_size (param i32 i32) (result i64)))
  (import "smart_rollup_core" "store_get_nth_key"
    (func $store_get_nth_key (param i32 i32 i64 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_delete" (func $store_delete (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_copy"
    (func $store_copy (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_move"
    (func $store_move (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_value_size"
    (func $store_value_size (param i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_preimage"
    (func $reveal_preimage (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_metadata"
    (func $reveal_metadata (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_read"
    (func $store_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "__internal_store_get_hash"
    (func $store_get_hash (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_delete_value"
    (func $store_delete_value (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_create"
    (func $store_create (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_exists" (func $store_exists (param i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal" (func $reveal (param i32 i32 i32 i32) (result i32)))

  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x10) "/log")

  ;; argument i of the current call, as i64 and as i32
  (func $arg64 (param $i i32) (result i64)
    (i64.load (i32.add (i32.const 0x20C) (i32.shl (local.get $i) (i32.const 3)))))
  (func $arg (param $i i32) (result i32)
    (i32.wrap_i64 (call $arg64 (local.get $i))))

  ;; call host function number $f with the current arguments
  (func $call_host (param $f i32) (result i64)
    (block $unknown
    (block $c18 (block $c17 (block $c16 (block $c15 (block $c14 (block $c13 (block $c12
    (block $c11 (block $c10 (block $c9 (block $c8 (block $c7 (block $c6 (block $c5 (block $c4
    (block $c3 (block $c2 (block $c1 (block $c0
      (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 $c8 $c9 $c10 $c11 $c12 $c13 $c14 $c15 $c16
                $c17 $c18 $unknown (local.get $f)))
      ;; 0 read_input(info, dst, max_bytes)
      (return (i64.extend_i32_s (call $read_input
        (call $arg (i32.const 0)) (call $arg (i32.const 1)) (call $arg (i32.const 2))))))
      ;; 1 write_output(src, num_bytes)
      (return (i64.extend_i32_s (call $write_output
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 2 write_debug(src, num_bytes)
      (call $write_debug (call $arg (i32.const 0)) (call $arg (i32.const 1)))
      (return (i64.const 0)))
      ;; 3 store_has(key, key_len)
      (return (i64.extend_i32_s (call $store_has
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 4 store_list_size(key, key_len) -> i64
      (return (call $store_list_size (call $arg (i32.const 0)) (call $arg (i32.const 1)))))
      ;; 5 store_get_nth_key(key, key_len, index: i64, dst, max_size)
      (return (i64.extend_i32_s (call $store_get_nth_key
        (call $arg (i32.const 0)) (call $arg (i32.const 1)) (call $arg64 (i32.const 2))
        (call $arg (i32.const 3)) (call $arg (i32.const 4))))))
      ;; 6 store_delete(key, key_len)
      (return (i64.extend_i32_s (call $store_delete
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 7 store_copy(from, from_len, to, to_len)
      (return (i64.extend_i32_s (call $store_copy
        (call $arg (i32.const 0)) (call $arg (i32.const 1))
        (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
      ;; 8 store_move(from, from_len, to, to_len)
      (return (i64.extend_i32_s (call $store_move
        (call $arg (i32.const 0)) (call $arg (i32.const 1))
        (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
      ;; 9 store_value_size(key, key_len)
      (return (i64.extend_i32_s (call $store_value_size
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 10 reveal_preimage(hash, hash_len, dst, max_bytes)
      (return (i64.extend_i32_s (call $reveal_preimage
        (call $arg (i32.const 0)) (call $arg (i32.const 1))
        (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
      ;; 11 reveal_metadata(dst, max_bytes)
      (return (i64.extend_i32_s (call $reveal_metadata
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 12 store_read(key, key_len, offset, dst, max_bytes)
      (return (i64.extend_i32_s (call $store_read
        (call $arg (i32.const 0)) (call $arg (i32.const 1)) (call $arg (i32.const 2))
        (call $arg (i32.const 3)) (call $arg (i32.const 4))))))
      ;; 13 store_write(key, key_len, offset, src, num_bytes)
      (return (i64.extend_i32_s (call $store_write
        (call $arg (i32.const 0)) (call $arg (i32.const 1)) (call $arg (i32.const 2))
        (call $arg (i32.const 3)) (call $arg (i32.const 4))))))
      ;; 14 __internal_store_get_hash(key, key_len, dst, max_size)
      (return (i64.extend_i32_s (call $store_get_hash
        (call $arg (i32.const 0)) (call $arg (i32.const 1))
        (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
      ;; 15 store_delete_value(key, key_len)
      (return (i64.extend_i32_s (call $store_delete_value
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 16 store_create(key, key_len, size)
      (return (i64.extend_i32_s (call $store_create
        (call $arg (i32.const 0)) (call $arg (i32.const 1)) (call $arg (i32.const 2))))))
      ;; 17 store_exists(key, key_len)
      (return (i64.extend_i32_s (call $store_exists
        (call $arg (i32.const 0)) (call $arg (i32.const 1))))))
      ;; 18 reveal(payload, payload_len, dst, max_bytes)
      (return (i64.extend_i32_s (call $reveal
        (call $arg (i32.const 0)) (call $arg (i32.const 1))
        (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
    ;; an unknown function index
    (i64.const -1000))

  ;; append result ‖ dump length ‖ dump to /log
  (func $log (param $result i64)
    (local $len i32)
    (local $size i32)
    (local.set $len (i32.load (i32.const 0x208)))
    (i64.store (i32.const 0x2000) (local.get $result))
    (i32.store (i32.const 0x2008) (local.get $len))
    (memory.copy (i32.const 0x200C) (i32.load (i32.const 0x204)) (local.get $len))
    (local.set $size (call $store_value_size (i32.const 0x10) (i32.const 4)))
    (if (i32.lt_s (local.get $size) (i32.const 0))
      (then (local.set $size (i32.const 0))))
    (drop (call $store_write (i32.const 0x10) (i32.const 4) (local.get $size)
      (i32.const 0x2000) (i32.add (local.get $len) (i32.const 12)))))

  (func (export "kernel_run")
    (local $result i64)
    (local $repeat i32)
    (loop $next_message
      (if (i32.gt_s
            (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096))
            (i32.const 0))
        (then
          (if (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 1))
            (then
              (memory.copy (i32.const 0x200) (i32.const 0x1000) (i32.const 52))
              (local.set $repeat (i32.load16_u (i32.const 0x202)))
              (if (i32.eqz (local.get $repeat)) (then (local.set $repeat (i32.const 1))))
              (loop $again
                (local.set $result (call $call_host (i32.load8_u (i32.const 0x201))))
                (local.set $repeat (i32.sub (local.get $repeat) (i32.const 1)))
                (br_if $again (local.get $repeat)))
              (call $log (local.get $result))))
          (br $next_message)))))
)
