"""The installer kernel (``soru.tools.installer``, ``kernels/installer.wat``; SORU-SPEC §6).

1. The config program's encoding, byte for byte as Octez's ``installer-config`` writes it;
   every program round-trips; the decoder refuses what the installer kernel refuses and the
   encoder refuses to write it.
2. The installer for ``kernels/rust/stack_vm.wasm`` (49,820 bytes, too large for an
   origination) fits in one; originated, its first level installs the stack VM, which then
   runs the level's programs and the next level's, on both engines, with the same state hash
   after every level.
3. What goes wrong stays put: a missing preimage leaves the PVM waiting on that reveal (the
   provider raises ``RevealError``; the installer is still the kernel) until the page is
   supplied; a tampered page is refused by the provider; a program or page tree the kernel
   cannot run makes it log the reason and trap, without a reboot.
4. A reveal tick of the installer is provable.
5. ``soru installer`` writes what :func:`build_installer` makes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import wasmtime
from pvm_kernels import KERNELS, ROLLUP, external

from soru.base.errors import DecodeError
from soru.encoding.michelson_text import parse_expression
from soru.encoding.reader import Reader
from soru.protocol.origination import (
    MAX_BOOT_SECTOR_SIZE,
    KernelTooLarge,
    Origination,
    PvmKind,
    check_origination,
)
from soru.pvm import driver, fast, layout, vm
from soru.pvm.proof import TickProof, produce_proof, verify_proof
from soru.pvm.reveals import RevealError, RevealProvider, reveal_hash
from soru.pvm.state import InputMessage, TickState
from soru.tools.inputs_file import with_markers
from soru.tools.installer import (
    KERNEL_BOOT_PATH,
    MAX_INSTRUCTION_SIZE,
    SDK_STAGING_PATH,
    STAGING_PATH,
    InstallerError,
    MalformedConfig,
    MoveInstruction,
    RevealInstruction,
    SetInstruction,
    build_installer,
    decode_config,
    encode_config,
    installer_kernel,
    read_config,
    upgrade_program,
    with_config,
)
from soru.tools.preimages import prepare_preimages, write_preimages
from soru.wasm.binary import decode_module

RUST = KERNELS / "rust"
STACK_VM = (RUST / "stack_vm.wasm").read_bytes()
TICKS = 200_000
"""Ticks per kernel_run: the installer needs a few thousand, the stack VM's programs here
fewer than 200,000."""
AUXILIARY = "/__installer_kernel/auxiliary/kernel/boot.wasm"
HASH = reveal_hash(b"some page")


def _gen_vm():
    spec = importlib.util.spec_from_file_location("gen_vm", RUST / "gen_vm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


assemble = _gen_vm().assemble


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


# --- 1. the config program ---------------------------------------------------------------------


def test_the_encoding_is_octez_s_byte_for_byte() -> None:
    program = (
        RevealInstruction(HASH, "/d"),
        MoveInstruction("/a", "/b"),
        SetInstruction(b"hi", "/c"),
    )
    reveal = b"\x00" + b"\x21\x00\x00\x00" + HASH + b"\x02/d"  # tag, u32 LE 33, hash, u8 path
    move = b"\x01" + b"\x02/a" + b"\x02/b"
    set_ = b"\x02" + b"\x02\x00\x00\x00hi" + b"\x02/c"
    body = b"".join(len(i).to_bytes(4, "little") + i for i in (reveal, move, set_))
    assert (len(reveal), len(move), len(set_)) == (41, 7, 10)
    assert encode_config(program) == body + len(body).to_bytes(4, "little")
    assert encode_config(()) == b"\x00\x00\x00\x00"
    assert decode_config(encode_config(program)) == program


def test_the_upgrade_program_is_the_client_s() -> None:
    """``smart-rollup-installer get-reveal-installer`` (installer-client/src/config.rs):
    Reveal to /installer/kernel/boot.wasm, Move to /kernel/boot.wasm."""
    assert upgrade_program(HASH) == (
        RevealInstruction(HASH, "/installer/kernel/boot.wasm"),
        MoveInstruction("/installer/kernel/boot.wasm", "/kernel/boot.wasm"),
    )
    assert upgrade_program(HASH, staging=SDK_STAGING_PATH)[0].to == "/__sdk/installer/reveal"


LONGEST = "/" + "x" * 241
PROGRAMS = [
    (),
    upgrade_program(HASH),
    (MoveInstruction(LONGEST, LONGEST),),  # 487 bytes: the kernel's buffer exactly
    (SetInstruction(b"v" * (MAX_INSTRUCTION_SIZE - 1 - 4 - 3), "/a"),),
    (SetInstruction(b"", "/readonlyx"), MoveInstruction("/a.b/c_d-E9", "/z")),
    upgrade_program(HASH) + (SetInstruction(b"Un festival de GADT", "/foo/tmp"),),
]


@pytest.mark.parametrize("program", PROGRAMS)
def test_programs_round_trip(program) -> None:
    encoded = encode_config(program)
    assert decode_config(encoded) == program
    assert read_config(with_config(installer_kernel(), program)) == program


def _instruction(body: bytes) -> bytes:
    return len(body).to_bytes(4, "little") + body


def _program(*instructions: bytes) -> bytes:
    body = b"".join(_instruction(i) for i in instructions)
    return body + len(body).to_bytes(4, "little")


def _path(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


BAD_PATHS = [b"", b"/", b"a", b"//a", b"/a/", b"/a//b", b"/a b", b"/a\xff", b"/readonly",
             b"/readonly/x", b"/" + b"x" * 242]  # fmt: skip
MALFORMED = {
    "empty": b"",
    "short": b"\x00\x00\x00",
    "size too large": b"\x01\x00\x00\x00",
    "size too small": b"\x00\x00\x00\x00\x00",
    "unknown tag": _program(b"\x03" + _path(b"/a") + _path(b"/b")),
    "empty instruction": _program(b""),
    "truncated": _program(b"\x01" + _path(b"/a") + b"\x02/"),
    "trailing byte": _program(b"\x01" + _path(b"/a") + _path(b"/b") + b"\x00"),
    "instruction past the program": b"\x09\x00\x00\x00\x01\x02/a\x04\x00\x00\x00",
    "instruction over 487 bytes": _program(
        b"\x02" + (480).to_bytes(4, "little") + b"v" * 480 + _path(b"/a")
    ),
    "bytes over 2048": _program(b"\x02" + (2049).to_bytes(4, "little")),
    "hash of 32 bytes": _program(b"\x00" + b"\x20\x00\x00\x00" + HASH[:32] + _path(b"/a")),
    "hash of 34 bytes": _program(b"\x00" + b"\x22\x00\x00\x00" + HASH + b"\x00" + _path(b"/a")),
    **{f"path {p!r}": _program(b"\x01" + _path(b"/a") + _path(p)) for p in BAD_PATHS},
}


@pytest.mark.parametrize("name", MALFORMED)
def test_the_decoder_is_strict(name: str) -> None:
    with pytest.raises(MalformedConfig) as caught:
        decode_config(MALFORMED[name])
    assert isinstance(caught.value, DecodeError) and isinstance(caught.value, InstallerError)


@pytest.mark.parametrize(
    "instruction",
    [
        RevealInstruction(HASH[:32], "/a"),
        SetInstruction(b"v" * 2049, "/a"),
        SetInstruction(b"v" * 480, "/a"),  # 489 bytes: over the kernel's buffer
        *(MoveInstruction("/a", p.decode("latin-1")) for p in BAD_PATHS),
    ],
)
def test_the_encoder_refuses_what_the_kernel_cannot_run(instruction) -> None:
    with pytest.raises(InstallerError) as caught:
        encode_config([instruction])
    assert not isinstance(caught.value, MalformedConfig)


def _custom_sections(wasm: bytes) -> list[str]:
    """The names of the custom sections of ``wasm``, in order."""
    reader, names = Reader(wasm, 8), []
    while not reader.at_end():
        section, size = reader.u8(), reader.u32()
        body = reader.window(size)
        if section == 0:
            names.append(body.byte_vec().decode())
    return names


def test_the_config_is_the_last_section() -> None:
    """The bare installer has no config; the tool appends a custom section named "config",
    which wasm decoders skip, and whose last 4 bytes are the program's size."""
    bare = installer_kernel()
    program = upgrade_program(HASH)
    installer = with_config(bare, program)
    encoded = encode_config(program)
    name = b"\x06config"
    assert len(name) + len(encoded) == 132  # LEB128 0x84 0x01
    assert installer == bare + b"\x00\x84\x01" + name + encoded
    assert "config" not in _custom_sections(bare)
    assert _custom_sections(installer)[-1] == "config"
    assert len(decode_module(installer).funcs) == len(decode_module(bare).funcs)
    wasmtime.Module.validate(wasmtime.Engine(), installer)
    with pytest.raises(MalformedConfig):
        read_config(bare)


def test_kernels_installer_wat_is_the_packaged_source() -> None:
    source = Path(__file__).resolve().parents[3] / "src" / "soru" / "tools" / "installer.wat"
    assert (KERNELS / "installer.wat").read_bytes() == source.read_bytes()
    assert installer_kernel() == wasmtime.wat2wasm(source.read_text(encoding="utf-8"))


# --- 2. installing the stack VM ----------------------------------------------------------------


def test_the_installer_fits_in_an_origination_and_the_kernel_does_not(tmp_path) -> None:
    installer = build_installer(STACK_VM, tmp_path)
    tree = prepare_preimages(STACK_VM)
    bare = len(installer_kernel())
    print(f"\nstack_vm.wasm {len(STACK_VM)} bytes; installer {len(installer)} bytes "
          f"(bare {bare}); {len(tree.pages)} pages, {tree.levels} levels")  # fmt: skip
    assert len(installer) < MAX_BOOT_SECTOR_SIZE // 8
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(h.hex() for h in tree.pages)
    assert read_config(installer) == upgrade_program(tree.root)

    def origination(kernel: bytes) -> Origination:
        return Origination(PvmKind.WASM_2_0_0, kernel, parse_expression("bytes"))

    check_origination(origination(installer))
    with pytest.raises(KernelTooLarge):
        check_origination(origination(STACK_VM))


LEVELS = [
    [assemble(("push8", 2), ("push8", 3), "add", "output", "counter_inc", "output")],
    [assemble("counter_inc", "drop", "counter_inc", "output"), assemble(("push8", 7), "output")],
]


def _run(installer: bytes, reveals: RevealProvider, engine: str):
    state = driver.originate(installer, ticks_per_kernel_run=TICKS, collect_debug=True)
    seen = []
    for level, programs in enumerate(LEVELS, 1):
        inbox = with_markers([external(p) for p in programs])
        result = driver.run_level(state, level, inbox, reveals, engine=engine)
        paths = [KERNEL_BOOT_PATH, "/readonly/kernel/boot.wasm", STAGING_PATH, AUXILIARY,
                 "/readonly/kernel/env/stuck", "/state/counter"]  # fmt: skip
        values = {p: state.durable.read_all(p) for p in paths}
        seen.append((bytes(layout.state_hash(state)), state.tick, state.stuck, result, values))
    return seen


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[bytes, Path]:
    directory = tmp_path_factory.mktemp("preimages")
    return build_installer(STACK_VM, directory), directory


def test_the_installer_installs_the_stack_vm_on_both_engines(published) -> None:
    installer, directory = published
    reveals = RevealProvider(directory, ROLLUP, 0)
    slow = _run(installer, reveals, "interpreter")
    before = Counter(fast.STATS)
    quick = _run(installer, reveals, "wasmtime")
    done = Counter(fast.STATS)
    done.subtract(before)
    assert done["returned"] == 3 and not done["deferred"]  # wasmtime ran every kernel_run
    for level, (a, b) in enumerate(zip(slow, quick, strict=True), 1):
        assert a == b, f"level {level}: the engines disagree"
    (_, _, stuck, first, values), (_, _, _, second, later) = slow
    assert stuck is None
    # Level 1: Collect, the installer's run, then (after its reboot) the stack VM's run.
    assert first.ticks == 3 * TICKS
    assert values[KERNEL_BOOT_PATH] == STACK_VM
    assert values["/readonly/kernel/boot.wasm"] == STACK_VM  # the fallback: the new kernel
    assert values[STAGING_PATH] is None and values[AUXILIARY] is None
    assert values["/readonly/kernel/env/stuck"] is None
    # The stack VM ran the level's program, which the installer left unread.
    assert first.outbox == (u64(5), u64(1))
    assert first.debug == (b"vm: status 0",)
    # Level 2: one kernel_run of the stack VM.
    assert second.ticks == 2 * TICKS
    assert second.outbox == (u64(3), u64(7))
    assert later["/state/counter"] == u64(3)


# --- 3. failures -------------------------------------------------------------------------------


def _waiting_hash(state) -> bytes:
    request = vm.input_request(state)
    assert request.kind == "reveal" and request.reveal[:1] == b"\x00"
    return request.reveal[1:]


@pytest.mark.parametrize("engine", ["interpreter", "wasmtime"])
def test_a_missing_preimage_leaves_the_pvm_waiting_for_it(published, tmp_path, engine) -> None:
    installer, directory = published
    tree = prepare_preimages(STACK_VM)
    missing = next(h for h, page in tree.pages.items() if page[0] == 0)  # a content page
    for name in os.listdir(directory):
        if name != missing.hex():
            (tmp_path / name).write_bytes((directory / name).read_bytes())
    reveals = RevealProvider(tmp_path, ROLLUP, 0)
    state = driver.originate(installer, ticks_per_kernel_run=TICKS)
    with pytest.raises(RevealError):
        driver.run_level(state, 1, with_markers([]), reveals, engine=engine)
    assert _waiting_hash(state) == missing
    assert state.durable.read_all(KERNEL_BOOT_PATH) == installer  # not installed
    assert state.stuck is None and state.tick_state is TickState.EVAL
    waiting_at = state.tick
    with pytest.raises(RevealError):  # asking again changes nothing
        driver.settle(state, reveals, engine=engine)
    assert state.tick == waiting_at
    # Once the page is supplied, the installation goes on from where it waited.
    (tmp_path / missing.hex()).write_bytes(tree.pages[missing])
    driver.settle(state, reveals, engine=engine)
    assert state.durable.read_all(KERNEL_BOOT_PATH) == STACK_VM
    assert state.tick == 3 * TICKS and vm.input_request(state).kind == "first_after"


def test_a_tampered_preimage_is_refused(published, tmp_path) -> None:
    installer, directory = published
    tree = prepare_preimages(STACK_VM)
    victim = next(h for h, page in tree.pages.items() if page[0] == 0)
    for name in os.listdir(directory):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    page = bytearray(tree.pages[victim])
    page[-1] ^= 1
    (tmp_path / victim.hex()).write_bytes(bytes(page))
    reveals = RevealProvider(tmp_path, ROLLUP, 0)
    with pytest.raises(RevealError, match="does not match its hash"):
        reveals.preimage(victim)
    state = driver.originate(installer, ticks_per_kernel_run=TICKS)
    with pytest.raises(RevealError, match="does not match its hash"):
        driver.run_level(state, 1, with_markers([]), reveals)
    assert _waiting_hash(state) == victim
    assert state.durable.read_all(KERNEL_BOOT_PATH) == installer


def _raw_installer(program: bytes) -> bytes:
    """The installer with ``program`` as its config, whatever the bytes."""
    name = b"\x06config"
    content = name + program
    assert len(content) < 128
    return installer_kernel() + b"\x00" + bytes((len(content),)) + content


def _trap_case(tmp_path, name: str) -> tuple[bytes, RevealProvider, bytes]:
    """(installer, reveals, the reason the installer logs) for each way it fails."""
    reveals = RevealProvider(tmp_path, ROLLUP, 0)
    malformed = b"installer: malformed config instruction"
    storage = b"installer: a durable storage call failed"
    if name in ("unknown tag", "readonly path", "size past the end", "no program"):
        raw = {
            "unknown tag": _program(b"\x03" + _path(b"/a") + _path(b"/b")),
            "readonly path": _program(b"\x01" + _path(b"/a") + _path(b"/readonly/a")),
            "size past the end": b"\x09\x00\x00\x00\x01\x02/a\x04\x00\x00\x00",
            "no program": b"\xff\xff\x00\x00",  # more than the whole installer
        }[name]
        reason = b"installer: no config program" if name == "no program" else malformed
        return _raw_installer(raw), reveals, reason
    if name == "move from nothing":
        return with_config(installer_kernel(), [MoveInstruction("/none", "/b")]), reveals, storage
    if name == "tree too deep":
        tree = prepare_preimages(bytes(range(256)) * 4, max_page_size=71)  # 6 levels
        write_preimages(tree, tmp_path)
        reason = b"installer: preimage tree deeper than 4 levels"
        return with_config(installer_kernel(), upgrade_program(tree.root)), reveals, reason
    assert name == "not a page"
    page = b"\x02\x00\x00\x00\x01x"
    (tmp_path / reveal_hash(page).hex()).write_bytes(page)
    program = upgrade_program(reveal_hash(page))
    return with_config(installer_kernel(), program), reveals, b"installer: malformed preimage page"


TRAPS = ["unknown tag", "readonly path", "size past the end", "no program",
         "move from nothing", "tree too deep", "not a page"]  # fmt: skip


@pytest.mark.parametrize("name", TRAPS)
def test_what_the_installer_cannot_run_makes_it_trap(tmp_path, name: str) -> None:
    installer, reveals, reason = _trap_case(tmp_path, name)
    hashes = []
    for engine in ("interpreter", "wasmtime"):
        state = driver.originate(installer, ticks_per_kernel_run=TICKS, collect_debug=True)
        result = driver.run_level(state, 1, with_markers([]), reveals, engine=engine)
        assert result.debug == (reason,)
        assert result.ticks == 2 * TICKS  # no reboot
        assert state.durable.read_all("/readonly/kernel/env/stuck") is not None
        assert state.durable.read_all(KERNEL_BOOT_PATH) == installer
        assert state.stuck is None  # a trap: the kernel runs again at the next level
        hashes.append(layout.state_hash(state))
    assert hashes[0] == hashes[1]


def test_set_instructions_after_the_upgrade(tmp_path) -> None:
    """As the client's ``--setup-file``: Set instructions after Reveal and Move."""
    tree = prepare_preimages(STACK_VM)
    write_preimages(tree, tmp_path)
    program = upgrade_program(tree.root) + (SetInstruction(b"Un festival de GADT", "/foo/tmp"),)
    state = driver.originate(with_config(installer_kernel(), program), ticks_per_kernel_run=TICKS)
    driver.run_level(state, 1, with_markers([]), RevealProvider(tmp_path, ROLLUP, 0))
    assert state.durable.read_all("/foo/tmp") == b"Un festival de GADT"
    assert state.durable.read_all(KERNEL_BOOT_PATH) == STACK_VM


# --- 4. a reveal tick's proof ------------------------------------------------------------------


def test_a_reveal_tick_of_the_installer_is_provable(published) -> None:
    installer, directory = published
    reveals = RevealProvider(directory, ROLLUP, 0)
    state = driver.originate(installer, ticks_per_kernel_run=TICKS)
    for counter, payload in enumerate(with_markers([])):
        vm.set_input(state, InputMessage(1, counter, payload))
    vm.compute(state, 3 * TICKS)  # padding, then the installer up to its first reveal
    root = read_config(installer)[0]
    assert isinstance(root, RevealInstruction) and _waiting_hash(state) == root.hash
    data = reveals.preimage(root.hash)
    before = layout.state_tree(state)
    proof, after = produce_proof(before, reveal=data)
    verified = verify_proof(TickProof.decode(proof.encode()))
    vm.reveal_step(state, data)
    assert verified.before == before.hash
    assert verified.after == after.hash == layout.state_hash(state)
    assert verified.input_request.kind == "reveal"
    print(f"\nthe installer's first reveal tick: a proof of {proof.size} bytes")
    forged = verify_proof(TickProof(proof.tree, None, data[:-1] + b"\x00"))
    assert forged.after != verified.after  # the data is part of what the proof proves


# --- 5. the command ----------------------------------------------------------------------------


def soru(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SORU_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "soru", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_the_command(tmp_path) -> None:
    kernel = tmp_path / "stack_vm.wasm"
    kernel.write_bytes(STACK_VM)
    expected = build_installer(STACK_VM, tmp_path / "expected")
    tree = prepare_preimages(STACK_VM)
    hex_run = soru("installer", "--upgrade-to", kernel, "--output", tmp_path / "i.hex",
                   "--preimages-dir", tmp_path / "pages")  # fmt: skip
    assert hex_run.returncode == 0, hex_run.stderr
    assert (tmp_path / "i.hex").read_text() == expected.hex()
    assert f"{len(expected)} bytes" in hex_run.stdout
    assert tree.root.hex() in hex_run.stdout and f"{len(tree.pages)} pages" in hex_run.stdout
    assert sorted(os.listdir(tmp_path / "pages")) == sorted(os.listdir(tmp_path / "expected"))
    wasm_run = soru("installer", "--upgrade-to", kernel, "--output", tmp_path / "i.wasm",
                    "--preimages-dir", tmp_path / "pages")  # fmt: skip
    assert wasm_run.returncode == 0 and (tmp_path / "i.wasm").read_bytes() == expected
    missing = soru("installer", "--upgrade-to", tmp_path / "none.wasm", "--output",
                   tmp_path / "x.hex", "--preimages-dir", tmp_path / "p")  # fmt: skip
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no such file" in missing.stderr
