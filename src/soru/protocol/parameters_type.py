"""The parameters type of a rollup: the Michelson type of what layer-1 contracts may send it
(``../shared/SORU-SPEC.md`` §1.6, §2.7).

A rollup is originated with a Michelson type; a contract sends to it with ``TRANSFER_TOKENS``
to ``sr1…`` typed ``contract <type>``, and the value reaches the rollup's inbox as a Transfer
message. :func:`check_parameters_type` decides whether a type may be a rollup's, exactly as
Octez does at origination (``Sc_rollup_operations.validate_untyped_parameters_ty``), which is
two steps:

1. **It is a well-formed passable Michelson type** (Octez
   ``parse_parameter_ty_and_entrypoints``, not legacy): known constructors with their
   arities (``pair`` takes two or more, right-combed: ``pair a b c`` = ``pair a (pair b c)``);
   no ``operation``; the argument of ``set``, ``ticket`` and a ``map``/``big_map`` key is
   comparable; at most :data:`MAX_TYPE_SIZE` nodes; well-formed annotations in their places.
2. **It is a type a rollup accepts** (``validate_ty``): ``unit int nat signature string bytes
   key_hash key timestamp address bls12_381_g1 bls12_381_g2 bls12_381_fr bool never chain_id``,
   ``contract t``, and ``ticket set option list pair or map`` of accepted types. Refused
   anywhere but under ``contract``: ``mutez big_map sapling_state sapling_transaction
   operation chest chest_key lambda``. The argument of ``contract`` only needs to be passable
   (``validate_ty`` does not look inside: ``contract mutez`` is accepted, as in Octez).

**Annotations.** A type node may carry one type annotation ``:name``. A field annotation
``%name`` is allowed only where Michelson reads one: on the components of a ``pair``, on the
branches of an ``or``, and on the root. At the root and on branches of the ``or`` tree hanging
from the root, a field annotation names an **entrypoint**, and rollups have none (the
entrypoint would not reach the rollup — Octez issue 4023), so it is refused; elsewhere (in a
``pair``, in an ``or`` under a ``pair``/``option``/…) it is a plain field name and accepted.
One Octez quirk is kept, so that what Octez accepts is accepted here: an entrypoint
annotation longer than 31 characters is not an entrypoint name
(``Entrypoint_repr.of_annot_lax_opt``) and is silently dropped, so it passes.

Every refusal raises :class:`InvalidParametersType` naming the offending node; Octez reports
the rollup-specific ones as ``Sc_rollup_invalid_parameters_type`` and the others as Michelson
type-checking errors (``Unexpected_annotation``, ``Invalid_arity``, ``Type_too_large``,
``Comparable_type_expected``…), all of which fail the origination. The check is iterative
(no recursion limit) and stops at the first fault, found in left-to-right pre-order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from soru.encoding.micheline import Int, Node, Prim
from soru.encoding.michelson_text import print_expression
from soru.protocol.errors import ProtocolError

MAX_TYPE_SIZE = 2001
"""Most nodes a Michelson type may have, counting ``pair a b c`` as ``pair a (pair b c)``
(Octez ``Constants_repr.michelson_maximum_type_size``)."""

MAX_ENTRYPOINT_LENGTH = 31
"""Longest entrypoint name (Octez ``Entrypoint_repr``); longer field annotations are not
entrypoints."""

MAX_ANNOTATION_LENGTH = 255
MAX_MEMO_SIZE = 0xFFFF
"""A sapling memo size is a ``uint16``."""

_ANNOTATION_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ANNOTATION_REST = _ANNOTATION_START | frozenset(".%@")


class InvalidParametersType(ProtocolError):
    """A type that cannot be a rollup's parameters type (Octez
    ``Sc_rollup_invalid_parameters_type``, or the Michelson type error that fails the
    origination before it). ``node`` is the offending node, ``reason`` says why."""

    def __init__(self, reason: str, node: Node) -> None:
        self.reason = reason
        self.node = node
        text = print_expression(node)
        if len(text) > 80:
            text = text[:77] + "..."
        super().__init__(f"invalid rollup parameters type: {reason}: {text}")


# --- the constructors ----------------------------------------------------------------------

COMPARABLE_LEAVES = frozenset(
    "unit never int nat signature string bytes mutez bool key_hash key timestamp chain_id "
    "address".split()
)
"""Types without arguments whose values can be compared (Octez ``is_comparable``)."""

LEAVES = COMPARABLE_LEAVES | frozenset(
    "operation bls12_381_g1 bls12_381_g2 bls12_381_fr chest chest_key".split()
)
"""Every type constructor without arguments."""

ARITY = {
    **dict.fromkeys(("contract", "ticket", "set", "option", "list"), 1),
    **dict.fromkeys(("sapling_state", "sapling_transaction"), 1),
    **dict.fromkeys(("or", "map", "big_map", "lambda"), 2),
}
"""Fixed arities of the type constructors with arguments (``pair`` takes two or more)."""

COMPARABLE_CONSTRUCTORS = COMPARABLE_LEAVES | {"pair", "or", "option"}
"""What a comparable type (a ``set`` element, a ``map`` key, a ``ticket`` content) is built of."""

FORBIDDEN_IN_ROLLUP = frozenset(
    "mutez big_map sapling_state sapling_transaction operation chest chest_key lambda".split()
)
"""Constructors ``validate_ty`` refuses (everywhere but under ``contract``)."""

DEPRECATED = frozenset({"sapling_transaction_deprecated", "tx_rollup_l2_address"})
"""Former type constructors no longer accepted in new scripts."""


class Position(Enum):
    """What a field annotation ``%name`` means on a node, given where the node is."""

    ENTRYPOINT = "entrypoint"
    """The root, or a branch of the ``or`` tree from the root: ``%name`` names an entrypoint."""
    FIELD = "field"
    """A component of a ``pair`` or a branch of another ``or``: ``%name`` names a field."""
    PLAIN = "plain"
    """Anywhere else: no field annotation is allowed."""


@dataclass(frozen=True, slots=True)
class _Context:
    """What a node may be, given where it is: Octez ``parse_ty``'s flags, plus ``comparable``
    (the node is inside a comparable type) and ``rollup`` (``validate_ty`` applies)."""

    position: Position
    lazy_storage: bool
    operation: bool
    contract: bool
    ticket: bool
    comparable: bool
    rollup: bool


_ROOT = _Context(Position.ENTRYPOINT, True, False, True, True, False, True)
"""A parameters type: passable (no ``operation``) and restricted by ``validate_ty``."""
_PASSABLE = _Context(Position.PLAIN, True, False, True, True, False, False)
"""The argument of ``contract``: any passable type."""
_ANY = _Context(Position.PLAIN, True, True, True, True, False, False)
"""An argument of ``lambda``: any type."""
_BIG_MAP_VALUE = _Context(Position.PLAIN, False, False, False, True, False, False)
_COMPARABLE = _Context(Position.PLAIN, False, False, False, False, True, False)


def _comparable(rollup: bool) -> _Context:
    return replace(_COMPARABLE, rollup=rollup)


# --- annotations ---------------------------------------------------------------------------


def _is_well_formed(annotation: str) -> bool:
    """Octez ``Script_ir_annot.parse_annot``: ``:``, ``@`` or ``%``, then nothing (a wildcard)
    or a letter, digit or ``_`` followed by letters, digits and ``_ . % @``."""
    if not 0 < len(annotation) <= MAX_ANNOTATION_LENGTH or annotation[0] not in ":@%":
        return False
    rest = annotation[1:]
    return not rest or (rest[0] in _ANNOTATION_START and set(rest[1:]) <= _ANNOTATION_REST)


def _check_annotations(node: Prim, position: Position) -> None:
    """Octez ``extract_field_annot`` (for fields and entrypoints) then ``check_type_annot``:
    the first named field annotation is taken where a field or an entrypoint may be named;
    what is left must be at most one type annotation."""
    annotations = list(node.annots)
    for annotation in annotations:
        if not _is_well_formed(annotation):
            raise InvalidParametersType(f"malformed annotation {annotation!r}", node)
    if position is not Position.PLAIN:
        field = next((a for a in annotations if a.startswith("%") and len(a) > 1), None)
        if field is not None:
            annotations.remove(field)
            if position is Position.ENTRYPOINT and len(field) - 1 <= MAX_ENTRYPOINT_LENGTH:
                raise InvalidParametersType(f"rollups have no entrypoints, found {field}", node)
    if len(annotations) > 1 or any(not a.startswith(":") for a in annotations):
        raise InvalidParametersType(f"unexpected annotation {' '.join(annotations)}", node)


# --- one node ------------------------------------------------------------------------------


def _check_constructor(node: Prim, context: _Context) -> None:
    """Whether the constructor of ``node`` may stand where ``context`` says, with its arity."""
    name, arity = node.name, len(node.args)
    if name in DEPRECATED:
        raise InvalidParametersType(f"{name} is deprecated", node)
    if name not in LEAVES and name not in ARITY and name != "pair":
        raise InvalidParametersType(f"{name} is not a type", node)
    if context.comparable and name not in COMPARABLE_CONSTRUCTORS:
        raise InvalidParametersType(f"{name} is not comparable", node)
    refused = (
        (name == "operation" and not context.operation)
        or (name in ("big_map", "sapling_state") and not context.lazy_storage)
        or (name == "contract" and not context.contract)
        or (name == "ticket" and not context.ticket)
    )
    if refused:
        raise InvalidParametersType(f"{name} is not allowed here", node)
    expected = 0 if name in LEAVES else ARITY.get(name, 2)
    if arity != expected and not (name == "pair" and arity > 2):
        raise InvalidParametersType(f"{name} takes {expected} arguments, not {arity}", node)
    if context.rollup and name in FORBIDDEN_IN_ROLLUP:
        raise InvalidParametersType(f"{name} is not allowed in a rollup parameters type", node)


def _children(node: Prim, context: _Context) -> list[tuple[Node, _Context]]:
    """The arguments of a checked ``node`` that are types, each with its own context."""
    name, args = node.name, node.args
    same = replace(context, position=Position.PLAIN)
    if name in ("option", "list"):
        return [(args[0], same)]
    if name in ("set", "ticket"):
        return [(args[0], _comparable(context.rollup))]
    if name == "map":
        return [(args[0], _comparable(context.rollup)), (args[1], same)]
    if name == "big_map":
        return [(args[0], _comparable(False)), (args[1], _BIG_MAP_VALUE)]
    if name == "contract":
        return [(args[0], _PASSABLE)]
    if name == "lambda":
        return [(args[0], _ANY), (args[1], _ANY)]
    if name == "or":
        entrypoints = context.position is Position.ENTRYPOINT
        branch = replace(context, position=Position.ENTRYPOINT if entrypoints else Position.FIELD)
        return [(args[0], branch), (args[1], branch)]
    if name == "pair":
        field = replace(context, position=Position.FIELD)
        rest = args[1] if len(args) == 2 else Prim("pair", args[1:])
        return [(args[0], field), (rest, field)]
    return []


def _check_memo_size(node: Prim) -> None:
    """The argument of ``sapling_state``/``sapling_transaction``: an integer in ``uint16``."""
    memo = node.args[0]
    if not isinstance(memo, Int) or not 0 <= memo.value <= MAX_MEMO_SIZE:
        raise InvalidParametersType("a sapling memo size is an integer in [0, 65535]", node)


# --- the whole type ------------------------------------------------------------------------


def check_parameters_type(node: Node) -> None:
    """Raise :class:`InvalidParametersType` unless ``node`` may be a rollup's parameters type
    (the rules are in the module docstring)."""
    work: list[tuple[Node, _Context]] = [(node, _ROOT)]
    size = 0
    while work:
        current, context = work.pop()
        size += 1
        if size > MAX_TYPE_SIZE:
            raise InvalidParametersType(f"a type has at most {MAX_TYPE_SIZE} nodes", node)
        if not isinstance(current, Prim):
            raise InvalidParametersType("not a type", current)
        _check_annotations(current, context.position)
        _check_constructor(current, context)
        if current.name in ("sapling_state", "sapling_transaction"):
            _check_memo_size(current)
        work.extend(reversed(_children(current, context)))
