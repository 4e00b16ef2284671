"""Constants of the ``wasm_2_0_0`` PVM: versions, tick budget, reboots, reserved paths.

Values follow Tezos (``../shared/SORU-SPEC.md`` §1.3, §5.1–§5.6) in the Mumbai–Oxford
era profile; each is a parameter of the PVM where Tezos makes it one.
"""

from __future__ import annotations

PVM_KIND = "wasm_2_0_0"

VERSIONS = ("2.0.0", "2.0.0-r1", "2.0.0-r2", "2.0.0-r3")
"""PVM versions soru implements (host functions up to the generic ``reveal`` of r3)."""

DEFAULT_VERSION = "2.0.0-r3"
"""Version of a new rollup (Oxford's ``current_version``)."""

TICKS_PER_KERNEL_RUN = 11_000_000_000
"""Ticks of one top-level call (``ticks_per_snapshot``, Mumbai–Oxford); every kernel_run,
and every inbox collection, is padded to exactly this many ticks."""

MAXIMUM_REBOOTS_PER_INPUT = 1000
REBOOT_COUNTER_RESET = MAXIMUM_REBOOTS_PER_INPUT + 1

OUTBOX_MESSAGE_LIMIT = 100
"""Outbox messages a kernel may write per level."""

OUTBOX_VALIDITY_PERIOD = 80_640
"""Levels an outbox is kept inside the PVM (Mumbai–Oxford)."""

CALL_STACK_LIMIT = 60_000
"""Call frames a kernel may use (V1 and later); deeper is a terminal Stuck."""

MAX_INPUT_MESSAGE_SIZE = 4096
MAX_OUTPUT_MESSAGE_SIZE = 4096

# Reserved durable paths (§5.4).
KERNEL_BOOT_PATH = "/kernel/boot.wasm"
REBOOT_FLAG_PATH = "/kernel/env/reboot"
VERSION_PATH = "/readonly/wasm_version"
FALLBACK_KERNEL_PATH = "/readonly/kernel/boot.wasm"
STUCK_FLAG_PATH = "/readonly/kernel/env/stuck"
UPGRADE_ERROR_PATH = "/readonly/kernel/env/upgrade_error"
TOO_MANY_REBOOT_PATH = "/readonly/kernel/env/too_many_reboot"
REBOOT_COUNTER_PATH = "/readonly/kernel/env/reboot_counter"

HOST_MODULE = "smart_rollup_core"
KERNEL_ENTRY = "kernel_run"
