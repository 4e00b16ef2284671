;; installer.wat — the installer kernel (SORU-SPEC §6), doing what the Tezos kernel SDK's
;; installer does: a small kernel originated in place of a kernel too large for a layer-1
;; operation, which fetches that kernel through reveals and installs it.
;;
;; Its config program is not in this module: `soru installer` (soru.tools.installer) appends
;; it to the compiled wasm as a custom section named "config", as Octez's
;; `smart-rollup-installer get-reveal-installer` does, so the installer's own
;; `/kernel/boot.wasm` ends with the program:
;;
;;   program      instruction* ‖ u32 LE: size of the instructions (the last 4 bytes)
;;   instruction  u32 LE: size ‖ tag ‖ fields
;;     0x00 Reveal  hash: bytes (33) ‖ to: path   reveal the page tree under hash into `to`
;;     0x01 Move    from: path ‖ to: path         store_move(from, to)
;;     0x02 Set     value: bytes ‖ to: path       store_write(to, offset 0, value)
;;   bytes        u32 LE length ‖ bytes, length ≤ 2048
;;   path         u8 length ‖ bytes, length ≤ 242, a writable SDK path: "/" then non-empty
;;                steps of [A-Za-z0-9._-] joined by "/", not under /readonly
;;
;; Octez (tezos/tezos-mirror d26a8bef82) writes it in
;; src/kernel_sdk/installer-config/src/binary/bin.rs (BinWriter: `put_le_size`,
;; `path_dynamic`, `bytes_dynamic`, the tags of `ConfigInstruction`), reads it in
;; .../binary/nom.rs (bounds MAX_FILE_CHUNK_SIZE = 2048 and PATH_MAX_SIZE = 242;
;; `RefPath::assert_from` panics on a path that is not valid and writable), and runs it in
;; src/kernel_sdk/installer-kernel/src/lib.rs into a buffer of
;; `RefConfigInstruction::MAX_SIZE` = 1 + 2 × (1 + 242) = 487 bytes (.../binary/size.rs).
;;
;; What kernel_run does, in Octez's order:
;;   1. read the program's size from the last 4 bytes of /kernel/boot.wasm;
;;   2. copy /kernel/boot.wasm to /__installer_kernel/auxiliary/kernel/boot.wasm and read the
;;      instructions from the copy (so that an instruction may replace /kernel/boot.wasm);
;;   3. run each instruction; Reveal walks the tree of DAC v0 pages depth first, at most 4
;;      levels (3 of hash pages, then content): content page 0x00 ‖ u32 BE length ‖ data —
;;      append the data to `to` (offsets from 0, pieces of at most 2048 bytes); hash page
;;      0x01 ‖ u32 BE length ‖ 33-byte hashes — walk each; as the SDK's SlicePage, the
;;      declared length may be shorter than the page, not longer;
;;   4. delete the copy and ask for a reboot (write one 0x00 byte to /kernel/env/reboot, as
;;      the SDK's mark_for_reboot does), so the installed kernel runs next, in the same level,
;;      on the level's inputs (the installer reads none).
;; Any failure — no program, a malformed instruction, a page that is not a page, a tree
;; deeper than 4 levels, a host call that returns an error — writes "installer: <reason>"
;; to the debug output and traps, so no reboot is asked for and the installer is still the
;; kernel at the next level. (Octez panics, hence traps, on what it cannot decode, but only
;; logs and returns when a host call fails; it also reads an instruction's bytes without
;; checking that they end before the program's size field — this one refuses that.)
;;
;; Memory: 0x010 "/kernel/boot.wasm" 0x030 "/__installer_kernel/auxiliary/kernel/boot.wasm"
;; 0x060 "/kernel/env/reboot" 0x080 "/readonly" 0x090 the reboot flag's 0x00 byte;
;; 0x100.. failure reasons (a length byte, then the text); 0x800 a u32 read from storage;
;; 0x1000 the instruction being run (at most 487 bytes);
;; 0x4000 + 0x1000 × depth (depth 0..3): the page being walked at that depth.
(module
  (import "smart_rollup_core" "write_debug" (func $write_debug (param i32 i32)))
  (import "smart_rollup_core" "store_value_size"
    (func $store_value_size (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_read"
    (func $store_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_copy"
    (func $store_copy (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_move"
    (func $store_move (param i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_delete" (func $store_delete (param i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_preimage"
    (func $reveal_preimage (param i32 i32 i32 i32) (result i32)))

  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x010) "/kernel/boot.wasm")
  (data (i32.const 0x030) "/__installer_kernel/auxiliary/kernel/boot.wasm")
  (data (i32.const 0x060) "/kernel/env/reboot")
  (data (i32.const 0x080) "/readonly")
  (data (i32.const 0x100) "\1cinstaller: no config program")
  (data (i32.const 0x120) "\27installer: malformed config instruction")
  (data (i32.const 0x150) "\28installer: a durable storage call failed")
  (data (i32.const 0x180) "\22installer: malformed preimage page")
  (data (i32.const 0x1b0) "\2dinstaller: preimage tree deeper than 4 levels")
  (data (i32.const 0x1e0) "\21installer: reveal_preimage failed")

  ;; The instruction being decoded: the next byte to read and the end of the instruction.
  (global $cursor (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  ;; The length of the last field read by $bytes or $path.
  (global $length (mut i32) (i32.const 0))
  ;; A Reveal's target path, and how many bytes of data it has received.
  (global $target (mut i32) (i32.const 0))
  (global $target_length (mut i32) (i32.const 0))
  (global $written (mut i32) (i32.const 0))

  ;; --- failures ------------------------------------------------------------------------

  ;; Log the reason (a length byte, then the text) and trap.
  (func $fail (param $reason i32)
    (call $write_debug (i32.add (local.get $reason) (i32.const 1))
      (i32.load8_u (local.get $reason)))
    unreachable)

  ;; Trap unless a host call returned 0.
  (func $check (param $result i32)
    (if (local.get $result) (then (call $fail (i32.const 0x150)))))

  ;; Read exactly $size bytes (≤ 2048) of the value at the key into $dst, or trap.
  (func $read (param $key i32) (param $key_length i32) (param $offset i32) (param $dst i32)
        (param $size i32)
    (if (i32.ne
          (call $store_read (local.get $key) (local.get $key_length) (local.get $offset)
            (local.get $dst) (local.get $size))
          (local.get $size))
      (then (call $fail (i32.const 0x150)))))

  ;; --- decoding an instruction ---------------------------------------------------------

  ;; The address of the next $size bytes of the instruction, which are then skipped.
  (func $take (param $size i32) (result i32)
    (local $at i32)
    (if (i32.gt_u (local.get $size) (i32.sub (global.get $end) (global.get $cursor)))
      (then (call $fail (i32.const 0x120))))
    (local.set $at (global.get $cursor))
    (global.set $cursor (i32.add (local.get $at) (local.get $size)))
    (local.get $at))

  ;; A `bytes` field: its address; its length in $length.
  (func $bytes (result i32)
    (global.set $length (i32.load (call $take (i32.const 4))))
    (if (i32.gt_u (global.get $length) (i32.const 2048))
      (then (call $fail (i32.const 0x120))))
    (call $take (global.get $length)))

  ;; A `path` field, checked as the SDK's RefPath::assert_from checks it: its address; its
  ;; length in $length.
  (func $path (result i32)
    (local $at i32)
    (global.set $length (i32.load8_u (call $take (i32.const 1))))
    (if (i32.gt_u (global.get $length) (i32.const 242))
      (then (call $fail (i32.const 0x120))))
    (local.set $at (call $take (global.get $length)))
    (call $check_path (local.get $at) (global.get $length))
    (local.get $at))

  ;; Whether a byte may appear in a path step: [A-Za-z0-9._-].
  (func $step_byte (param $byte i32) (result i32)
    (i32.or
      (i32.or
        (i32.lt_u (i32.sub (local.get $byte) (i32.const 0x30)) (i32.const 10))
        (i32.lt_u
          (i32.sub (i32.or (local.get $byte) (i32.const 0x20)) (i32.const 0x61))
          (i32.const 26)))
      (i32.or
        (i32.or (i32.eq (local.get $byte) (i32.const 0x2e))
                (i32.eq (local.get $byte) (i32.const 0x5f)))
        (i32.eq (local.get $byte) (i32.const 0x2d)))))

  ;; Trap unless the path is "/" followed by non-empty steps joined by "/" (so at least two
  ;; bytes, no "//", no "/" at the end) and is not /readonly or under it.
  (func $check_path (param $at i32) (param $length i32)
    (local $i i32)
    (local $byte i32)
    (local $previous i32)
    (if (i32.lt_u (local.get $length) (i32.const 2)) (then (call $fail (i32.const 0x120))))
    (if (i32.ne (i32.load8_u (local.get $at)) (i32.const 0x2f))
      (then (call $fail (i32.const 0x120))))
    (local.set $previous (i32.const 0x2f))
    (local.set $i (i32.const 1))
    (loop $each_byte
      (local.set $byte (i32.load8_u (i32.add (local.get $at) (local.get $i))))
      (if (i32.eq (local.get $byte) (i32.const 0x2f))
        (then
          (if (i32.eq (local.get $previous) (i32.const 0x2f))
            (then (call $fail (i32.const 0x120)))))
        (else
          (if (i32.eqz (call $step_byte (local.get $byte)))
            (then (call $fail (i32.const 0x120))))))
      (local.set $previous (local.get $byte))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each_byte (i32.lt_u (local.get $i) (local.get $length))))
    (if (i32.eq (local.get $previous) (i32.const 0x2f)) (then (call $fail (i32.const 0x120))))
    ;; "/readonly" (9 bytes), alone or followed by "/"
    (if (i32.ge_u (local.get $length) (i32.const 9))
      (then
        (if (i64.eq (i64.load (i32.add (local.get $at) (i32.const 1)))
                    (i64.load (i32.const 0x081)))
          (then
            (if (i32.eq (local.get $length) (i32.const 9))
              (then (call $fail (i32.const 0x120))))
            (if (i32.eq (i32.load8_u offset=9 (local.get $at)) (i32.const 0x2f))
              (then (call $fail (i32.const 0x120)))))))))

  ;; --- running an instruction ----------------------------------------------------------

  ;; Decode the instruction between $cursor and $end, completely, then run it.
  (func $run_instruction
    (local $tag i32)
    (local $first i32)
    (local $first_length i32)
    (local $to i32)
    (local $to_length i32)
    (local.set $tag (i32.load8_u (call $take (i32.const 1))))
    (if (i32.gt_u (local.get $tag) (i32.const 2)) (then (call $fail (i32.const 0x120))))
    ;; the first field: a path for Move, bytes for Reveal (the hash) and Set (the value)
    (if (i32.eq (local.get $tag) (i32.const 1))
      (then (local.set $first (call $path)))
      (else (local.set $first (call $bytes))))
    (local.set $first_length (global.get $length))
    (local.set $to (call $path))
    (local.set $to_length (global.get $length))
    (if (i32.ne (global.get $cursor) (global.get $end)) (then (call $fail (i32.const 0x120))))
    (if (i32.eqz (local.get $tag))
      (then
        (if (i32.ne (local.get $first_length) (i32.const 33))
          (then (call $fail (i32.const 0x120))))
        (global.set $target (local.get $to))
        (global.set $target_length (local.get $to_length))
        (global.set $written (i32.const 0))
        (call $walk (local.get $first) (i32.const 0))
        (return)))
    (if (i32.eq (local.get $tag) (i32.const 1))
      (then
        (call $check
          (call $store_move (local.get $first) (local.get $first_length)
            (local.get $to) (local.get $to_length)))
        (return)))
    (call $check
      (call $store_write (local.get $to) (local.get $to_length) (i32.const 0)
        (local.get $first) (local.get $first_length))))

  ;; --- Reveal: the page tree -----------------------------------------------------------

  ;; Append $size bytes at $src to the Reveal's target, in pieces of at most 2048 bytes.
  (func $append (param $src i32) (param $size i32)
    (local $piece i32)
    (block $done
      (loop $pieces
        (br_if $done (i32.eqz (local.get $size)))
        (local.set $piece (local.get $size))
        (if (i32.gt_u (local.get $piece) (i32.const 2048))
          (then (local.set $piece (i32.const 2048))))
        (call $check
          (call $store_write (global.get $target) (global.get $target_length)
            (global.get $written) (local.get $src) (local.get $piece)))
        (global.set $written (i32.add (global.get $written) (local.get $piece)))
        (local.set $src (i32.add (local.get $src) (local.get $piece)))
        (local.set $size (i32.sub (local.get $size) (local.get $piece)))
        (br $pieces))))

  ;; A big-endian u32.
  (func $u32_be (param $at i32) (result i32)
    (i32.or
      (i32.or
        (i32.shl (i32.load8_u (local.get $at)) (i32.const 24))
        (i32.shl (i32.load8_u offset=1 (local.get $at)) (i32.const 16)))
      (i32.or
        (i32.shl (i32.load8_u offset=2 (local.get $at)) (i32.const 8))
        (i32.load8_u offset=3 (local.get $at)))))

  ;; Reveal the page named by the 33-byte hash at $hash and walk it ($depth 0 is the root).
  (func $walk (param $hash i32) (param $depth i32)
    (local $page i32)
    (local $size i32)
    (local $length i32)
    (local $child i32)
    (if (i32.ge_u (local.get $depth) (i32.const 4)) (then (call $fail (i32.const 0x1b0))))
    (local.set $page (i32.add (i32.const 0x4000) (i32.shl (local.get $depth) (i32.const 12))))
    (local.set $size
      (call $reveal_preimage (local.get $hash) (i32.const 33) (local.get $page)
        (i32.const 4096)))
    (if (i32.lt_s (local.get $size) (i32.const 0)) (then (call $fail (i32.const 0x1e0))))
    (if (i32.lt_u (local.get $size) (i32.const 5)) (then (call $fail (i32.const 0x180))))
    (local.set $length (call $u32_be (i32.add (local.get $page) (i32.const 1))))
    (if (i32.gt_u (local.get $length) (i32.sub (local.get $size) (i32.const 5)))
      (then (call $fail (i32.const 0x180))))
    (local.set $child (i32.add (local.get $page) (i32.const 5)))
    (if (i32.eqz (i32.load8_u (local.get $page)))
      (then
        (call $append (local.get $child) (local.get $length))
        (return)))
    (if (i32.ne (i32.load8_u (local.get $page)) (i32.const 1))
      (then (call $fail (i32.const 0x180))))
    (if (i32.rem_u (local.get $length) (i32.const 33)) (then (call $fail (i32.const 0x180))))
    (block $done
      (loop $children
        (br_if $done (i32.eqz (local.get $length)))
        (call $walk (local.get $child) (i32.add (local.get $depth) (i32.const 1)))
        (local.set $child (i32.add (local.get $child) (i32.const 33)))
        (local.set $length (i32.sub (local.get $length) (i32.const 33)))
        (br $children))))

  ;; --- the kernel ----------------------------------------------------------------------

  (func (export "kernel_run")
    (local $size i32)
    (local $end i32)
    (local $offset i32)
    (local $instruction i32)
    ;; 1. the program: the last 4 bytes of /kernel/boot.wasm are its size
    (local.set $size (call $store_value_size (i32.const 0x010) (i32.const 17)))
    (if (i32.lt_s (local.get $size) (i32.const 4)) (then (call $fail (i32.const 0x100))))
    (local.set $end (i32.sub (local.get $size) (i32.const 4)))
    (call $read (i32.const 0x010) (i32.const 17) (local.get $end) (i32.const 0x800)
      (i32.const 4))
    (if (i32.gt_u (i32.load (i32.const 0x800)) (local.get $end))
      (then (call $fail (i32.const 0x100))))
    (local.set $offset (i32.sub (local.get $end) (i32.load (i32.const 0x800))))
    ;; 2. read it from a copy of the kernel
    (call $check
      (call $store_copy (i32.const 0x010) (i32.const 17) (i32.const 0x030) (i32.const 46)))
    ;; 3. each instruction: its size, then its bytes, which must end before $end
    (block $done
      (loop $instructions
        (br_if $done (i32.ge_u (local.get $offset) (local.get $end)))
        (if (i32.lt_u (i32.sub (local.get $end) (local.get $offset)) (i32.const 4))
          (then (call $fail (i32.const 0x120))))
        (call $read (i32.const 0x030) (i32.const 46) (local.get $offset) (i32.const 0x800)
          (i32.const 4))
        (local.set $instruction (i32.load (i32.const 0x800)))
        (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
        (if (i32.or
              (i32.gt_u (local.get $instruction) (i32.const 487))
              (i32.gt_u (local.get $instruction) (i32.sub (local.get $end) (local.get $offset))))
          (then (call $fail (i32.const 0x120))))
        (call $read (i32.const 0x030) (i32.const 46) (local.get $offset) (i32.const 0x1000)
          (local.get $instruction))
        (local.set $offset (i32.add (local.get $offset) (local.get $instruction)))
        (global.set $cursor (i32.const 0x1000))
        (global.set $end (i32.add (i32.const 0x1000) (local.get $instruction)))
        (call $run_instruction)
        (br $instructions)))
    ;; 4. delete the copy, and reboot into whatever /kernel/boot.wasm now holds
    (call $check (call $store_delete (i32.const 0x030) (i32.const 46)))
    (drop (call $store_write (i32.const 0x060) (i32.const 18) (i32.const 0) (i32.const 0x090)
      (i32.const 1))))
)
