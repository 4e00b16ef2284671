"""WebAssembly 2.0 (without SIMD), split like the specification.

* ``syntax``     — the abstract syntax of modules: types, instructions, segments.
* ``opcodes``    — the one opcode table: name, immediates and typing of every instruction.
* ``binary``     — the binary decoder (``decode_module``), with an optional float ban.
* ``validate``   — the type checker (``validate_module``).
* ``numerics``   — every numeric operator on values held as unsigned bit patterns.
* ``runtime``    — the store: function, table, memory and global instances; instantiation.
* ``exec``       — the small-step machine: lowering of function bodies, the handlers, the
                   tick-cost table, and ``Machine.run(ticks=N)``.

Values are plain Python ints holding the unsigned bit pattern of the value (an f64 is its
64 IEEE bits), so nothing in a machine state is a Python float; references are ``None``
(null) or an int address.
"""
