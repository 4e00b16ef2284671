"""The spec's validation context C (validation chapter, "Contexts"): what a function body or a
constant expression may refer to, by index — types, functions, tables, memories, globals,
element and data segments, and the functions ``ref.func`` may name.

:class:`Context` is built from a whole :class:`~soru.wasm.syntax.Module` by ``validate``, or
assembled from parts (:meth:`Context.of`) by a caller that keeps the module elsewhere (the
PVM's loader); :class:`~soru.wasm.validate_body.BodyChecker` reads it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from soru.wasm.errors import InvalidModule
from soru.wasm.syntax import ExternKind, FuncType, GlobalType, MemType, Module, TableType

Signature = tuple[list[int], list[int]]
"""A function or block type as plain-int lists: parameter types, result types."""


def _signature(ftype: FuncType) -> Signature:
    """``ftype`` as plain-int lists, the form the body checker compares against the stack."""
    return [int(t) for t in ftype.params], [int(t) for t in ftype.results]


class Context:
    """The spec's context C: what a body or constant expression may refer to, by index."""

    __slots__ = (
        "types",
        "funcs",
        "tables",
        "mems",
        "globals",
        "imported_globals",
        "elems",
        "datas",
        "has_data_count",
        "refs",
    )

    def __init__(self, module: Module) -> None:
        self.types: list[Signature] = [_signature(t) for t in module.types]
        self.funcs: list[Signature] = []
        self.tables: list[int] = []  # element type of each table
        self.mems = 0
        self.globals: list[tuple[int, bool]] = []  # (value type, mutable)
        for imp in module.imports:
            self._add_import(imp.kind, imp.desc, f"import {imp.module!r} {imp.name!r}")
        self.imported_globals = len(self.globals)
        for func in module.funcs:
            where = f"function {len(self.funcs)}"
            self.funcs.append(self._type_at(func.type_index, where))
        for table in module.tables:
            self.tables.append(int(table.elem))
        self.mems += len(module.mems)
        for glob in module.globals:
            self.globals.append((int(glob.type.valtype), glob.type.mutable))
        self.elems: list[int] = [int(e.type) for e in module.elems]
        self.datas = len(module.datas)
        self.has_data_count = module.data_count is not None
        self.refs = _declared_references(module)

    @classmethod
    def of(
        cls,
        *,
        types: Sequence[Signature],
        funcs: Sequence[Signature],
        tables: Sequence[int],
        mems: int,
        globals: Sequence[tuple[int, bool]],
        imported_globals: int,
        elems: Sequence[int],
        datas: int,
        has_data_count: bool,
        refs: Container[int],
    ) -> Context:
        """A context from its parts, computing nothing: the checker only takes lengths and
        reads items by index (and asks ``f in refs``), so the parts may be lazy views that
        read, from wherever the module is kept, only what a body actually uses."""
        ctx = cls.__new__(cls)
        ctx.types, ctx.funcs, ctx.tables, ctx.mems = types, funcs, tables, mems  # type: ignore[assignment]
        ctx.globals, ctx.imported_globals = globals, imported_globals  # type: ignore[assignment]
        ctx.elems, ctx.datas, ctx.has_data_count = elems, datas, has_data_count  # type: ignore[assignment]
        ctx.refs = refs  # type: ignore[assignment]
        return ctx

    def _type_at(self, index: int, where: str) -> Signature:
        if not 0 <= index < len(self.types):
            raise InvalidModule(f"unknown type {index}: {where}")
        return self.types[index]

    def _add_import(self, kind: ExternKind, desc: object, where: str) -> None:
        if kind == ExternKind.FUNC and isinstance(desc, int):
            self.funcs.append(self._type_at(desc, where))
        elif kind == ExternKind.TABLE and isinstance(desc, TableType):
            self.tables.append(int(desc.elem))
        elif kind == ExternKind.MEMORY and isinstance(desc, MemType):
            self.mems += 1
        elif kind == ExternKind.GLOBAL and isinstance(desc, GlobalType):
            self.globals.append((int(desc.valtype), desc.mutable))
        else:
            raise InvalidModule(f"import kind {kind!r} does not match its description: {where}")


def _declared_references(module: Module) -> frozenset[int]:
    """C.refs: the functions named by ``ref.func`` in globals and element segments, or
    exported. Only these may be referenced by ``ref.func`` inside function bodies."""
    refs: set[int] = set()
    exprs = [g.init for g in module.globals]
    for elem in module.elems:
        exprs.extend(elem.init)
        exprs.append(elem.offset)
    for expr in exprs:
        refs.update(imm for op, imm in expr if op == 0xD2 and isinstance(imm, int))
    refs.update(e.index for e in module.exports if e.kind == ExternKind.FUNC)
    return frozenset(refs)
