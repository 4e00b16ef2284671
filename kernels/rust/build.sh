#!/bin/sh
# Builds kernels/rust/stack_vm.wasm from stack_vm.rs (+ the generated stack_vm_ops.rs).
#
# Needs Debian's Rust toolchain with the wasm32 standard library and the wasm linker:
#     apt-get install rustc libstd-rust-dev-wasm32 lld      # rustc 1.63 (Debian 12)
# No cargo, no crates. RUSTC defaults to /usr/bin/rustc (a rustup rustc on PATH may lack the
# wasm32-unknown-unknown target). OUT defaults to stack_vm.wasm next to this script.
#
# Regenerate stack_vm_ops.rs first if gen_vm.py changed:  python3 kernels/rust/gen_vm.py
set -eu
here=$(cd "$(dirname "$0")" && pwd)
RUSTC=${RUSTC:-/usr/bin/rustc}
OUT=${OUT:-$here/stack_vm.wasm}
"$RUSTC" --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
    -C opt-level=2 -C panic=abort -C lto -C codegen-units=1 -C debuginfo=0 -C strip=symbols \
    --remap-path-prefix "$here=." \
    -o "$OUT" "$here/stack_vm.rs"
