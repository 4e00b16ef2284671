"""Micheline binary and text forms.

Vectors from outside soru:

* the outbox message of the Octez docs (``smart_rollup_node.rst``, SORU-SPEC §2.6), whose
  parameters are ``03 0b`` (``Unit``);
* primitive codes quoted as constants in the Octez kernel SDK
  (``src/kernel_sdk/encoding/src/michelson.rs``: Left 5, None 6, Pair 7, Right 8, Some 9,
  Unit 11, int 91, nat 98, option 99, or 100, pair 101, string 104, bytes 105, unit 108,
  Ticket 157);
* Zarith encodings from the tests of ``tezbridge-crypto`` (``5311`` as ``z`` is ``bf52``;
  ``13311`` as ``n`` is ``ff67``);
* a packed multisig payload signed with ``tezos-client sign bytes`` in public Tezos tooling.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.crypto.addresses import ContractHash, decode_contract
from soru.encoding.micheline import (
    OXFORD_PRIMITIVE_COUNT,
    PRIMITIVE_CODES,
    PRIMITIVES,
    Bytes,
    Int,
    InvalidAnnotation,
    MichelineError,
    Node,
    Prim,
    Seq,
    String,
    UnknownPrimitive,
    decode_expression,
    decode_expression_at,
    encode_expression,
    expression_length,
)
from soru.encoding.michelson_text import (
    MichelsonSyntaxError,
    parse_expression,
    print_expression,
)
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer, encode_zarith_n, encode_zarith_z

DOCS_OUTBOX = bytes.fromhex(
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)
MULTISIG_PACKED = bytes.fromhex(
    "0507070707002a050507070080897a0a00000016000002298c03ed7d454a101eb7022bc95f7e5f41ac78"
    "07070a00000016011d23c1d3d2f8a4ea5e8784b8f7ecf2ad304c0fe6000a000000047a06a770"
)


def unit() -> Prim:
    return Prim("Unit")


# --- primitives -----------------------------------------------------------------------------


def test_primitive_codes_match_the_kernel_sdk() -> None:
    quoted = {"Left": 5, "None": 6, "Pair": 7, "Right": 8, "Some": 9, "Unit": 11, "int": 91}
    quoted |= {"nat": 98, "option": 99, "or": 100, "pair": 101, "string": 104, "bytes": 105}
    quoted |= {"unit": 108, "Ticket": 157}
    for name, code in quoted.items():
        assert PRIMITIVE_CODES[name] == code, name


def test_primitive_table_shape() -> None:
    assert len(PRIMITIVES) == len(set(PRIMITIVES)) == 0xA1
    assert PRIMITIVES[OXFORD_PRIMITIVE_COUNT - 1] == "NAT" and OXFORD_PRIMITIVE_COUNT == 0x9D
    assert PRIMITIVES[-1] == "GET_ADDRESS_INDEX"


# --- Zarith -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "z", "n"),
    [(0, "00", "00"), (63, "3f", "3f"), (64, "8001", "40"), (127, "bf01", "7f"),
     (128, "8002", "8001"), (5311, "bf52", "bf29"), (13311, "bfcf01", "ff67"),
     (-1, "41", None), (-64, "c001", None)],
)  # fmt: skip
def test_zarith_vectors(value: int, z: str, n: str | None) -> None:
    assert encode_zarith_z(value).hex() == z
    assert Reader(bytes.fromhex(z)).zarith_z() == value
    if n is not None:
        assert encode_zarith_n(value).hex() == n
        assert Reader(bytes.fromhex(n)).zarith_n() == value


@given(st.integers())
def test_zarith_round_trip(value: int) -> None:
    reader = Reader(Writer().zarith_z(value).zarith_n(abs(value)).getvalue())
    assert (reader.zarith_z(), reader.zarith_n()) == (value, abs(value))
    assert reader.at_end()


@pytest.mark.parametrize(("data", "signed"), [("8000", False), ("808000", True), ("80", True)])
def test_zarith_rejects_trailing_zero_and_truncation(data: str, signed: bool) -> None:
    reader = Reader(bytes.fromhex(data))
    with pytest.raises(DecodeError):
        reader.zarith_z() if signed else reader.zarith_n()


def test_zarith_minus_zero_reads_as_zero() -> None:
    assert Reader(b"\x40").zarith_z() == 0


# --- binary vectors -------------------------------------------------------------------------


def test_docs_outbox_message_parameters() -> None:
    """Tag 00 (untyped batch), list of 0x23 bytes: Unit, KT1 destination, "default"."""
    assert DOCS_OUTBOX[0] == 0 and int.from_bytes(DOCS_OUTBOX[1:5], "big") == 0x23
    node, end = decode_expression_at(DOCS_OUTBOX, 5)
    assert node == unit() and end == 7
    assert expression_length(DOCS_OUTBOX, 5) == 7
    destination = decode_contract(DOCS_OUTBOX[7:29])
    assert destination == ContractHash.of_b58("KT1ThEdxfUcWUwqsdergy3QnbCWGHSUHeHJq")
    assert DOCS_OUTBOX[29:] == b"\x00\x00\x00\x07default"
    assert len(DOCS_OUTBOX) == 5 + 0x23


def test_packed_multisig_payload() -> None:
    node = decode_expression(MULTISIG_PACKED[1:])
    bootstrap1 = bytes.fromhex("000002298c03ed7d454a101eb7022bc95f7e5f41ac78")
    kt1 = bytes.fromhex("011d23c1d3d2f8a4ea5e8784b8f7ecf2ad304c0fe600")
    action = Prim("Left", [Prim("Pair", [Int(1_000_000), Bytes(bootstrap1)])])
    inner = Prim("Pair", [Bytes(kt1), Bytes(bytes.fromhex("7a06a770"))])
    assert node == Prim("Pair", [Prim("Pair", [Int(42), action]), inner])
    assert encode_expression(node) == MULTISIG_PACKED[1:]


@pytest.mark.parametrize(
    ("node", "hex_"),
    [
        (Int(1), "0001"),
        (Int(-5), "0045"),
        (String("a"), "010000000161"),
        (Bytes(b"\x0a"), "0a000000010a"),
        (Seq([]), "0200000000"),
        (Seq([Int(1), Int(2)]), "020000000400010002"),
        (unit(), "030b"),
        (Prim("nat", annots=["%a"]), "0462000000022561"),
        (Prim("Some", [Int(3)]), "05090003"),
        (Prim("option", [Prim("nat")], ["%x", ":t"]), "06630362000000052578203a74"),
        (Prim("Pair", [Int(1), String("a")]), "07070001010000000161"),
        (Prim("pair", [Prim("nat"), Prim("nat")], ["%p"]), "086503620362000000022570"),
        (Prim("Pair", [Int(1), Int(2), Int(3)]), "09070000000600010002000300000000"),
        (Prim("Elt", [String("k"), Int(1)]), "070401000000016b0001"),
    ],
)
def test_encodings(node: Node, hex_: str) -> None:
    assert encode_expression(node).hex() == hex_
    assert decode_expression(bytes.fromhex(hex_)) == node


@pytest.mark.parametrize(
    ("hex_", "node"),
    [
        ("0907000000040001000200000000", Prim("Pair", [Int(1), Int(2)])),  # generic form
        ("090b0000000000000000", unit()),
        ("040b00000000", unit()),  # empty annotation string
        ("0609000000000000", Prim("Some", [Int(0)])),
    ],
)
def test_non_compact_forms_decode(hex_: str, node: Node) -> None:
    assert decode_expression(bytes.fromhex(hex_)) == node
    assert len(encode_expression(node)) < len(bytes.fromhex(hex_))


@pytest.mark.parametrize(
    "hex_",
    [
        "",  # nothing
        "030b00",  # trailing byte
        "0b",  # unknown tag
        "03a1",  # unknown primitive code
        "03",  # truncated
        "0100000002ff",  # length past the end
        "0100000001ff",  # not UTF-8
        "02000000010001",  # an element overruns its sequence
        "0200000003000100",  # the second element is cut by the end of the sequence
        "0462000000022520",  # "% " is not an annotation
        "0462000000032561",  # truncated annotation string
        "04620000000161",  # "a" lacks its sigil
        "008000",  # Zarith trailing zero
        "09400000000000000001",  # annotation string cut
        "0a40000000",  # length 2^30 is over the limit
    ],
)
def test_strict_decoding(hex_: str) -> None:
    with pytest.raises(DecodeError):
        decode_expression(bytes.fromhex(hex_))


def test_encode_errors() -> None:
    with pytest.raises(UnknownPrimitive):
        encode_expression(Prim("Foo"))
    with pytest.raises(InvalidAnnotation):
        encode_expression(Prim("nat", annots=["a"]))
    with pytest.raises(TypeError):
        encode_expression(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_expression(Seq([1, b"x"]))  # type: ignore[list-item]


def test_deep_nesting_has_no_recursion_limit() -> None:
    node: Node = Int(0)
    for _ in range(5000):
        node = Prim("Some", [Seq([node])])
    data = encode_expression(node)
    # (== on such deep trees would exhaust Python's stack; compare encodings instead)
    assert encode_expression(decode_expression(data)) == data
    assert expression_length(data + b"\x00", 0) == len(data)
    text = print_expression(node)
    assert encode_expression(parse_expression(text)) == data


# --- text -----------------------------------------------------------------------------------

PARSED = [
    ("Unit", unit()),
    ('Pair 1 "a"', Prim("Pair", [Int(1), String("a")])),
    (
        "(Pair (Left 0x0a) {1; 2})",
        Prim("Pair", [Prim("Left", [Bytes(b"\n")]), Seq([Int(1), Int(2)])]),
    ),
    ("Some 3", Prim("Some", [Int(3)])),
    ("None", Prim("None")),
    ("True", Prim("True")),
    ('{ Elt "k" 1 }', Seq([Prim("Elt", [String("k"), Int(1)])])),
    ('{ Elt "a" 1 ; Elt "b" 2 ; }', Seq([Prim("Elt", [String("a"), Int(1)]),
                                         Prim("Elt", [String("b"), Int(2)])])),
    ("-5", Int(-5)),
    ("007", Int(7)),
    ('"tab\\t quote\\" back\\\\ nl\\n cr\\r bs\\b é"',
     String('tab\t quote" back\\ nl\n cr\r bs\b é')),
    ("0x", Bytes(b"")),
    ("0xDEADbeef", Bytes(bytes.fromhex("deadbeef"))),
    ("pair (ticket unit) nat", Prim("pair", [Prim("ticket", [Prim("unit")]), Prim("nat")])),
    ("or nat string", Prim("or", [Prim("nat"), Prim("string")])),
    ("pair %p (nat %a) (string :s @v)", Prim("pair", [Prim("nat", annots=["%a"]),
                                                       Prim("string", annots=[":s", "@v"])],
                                              ["%p"])),
    ("{}", Seq([])),
    ("{ {} ; { 1 } }", Seq([Seq([]), Seq([Int(1)])])),
    ("Pair Unit (Pair 1 2) 3", Prim("Pair", [unit(), Prim("Pair", [Int(1), Int(2)]), Int(3)])),
    ("# comment\n Some /* a /* nested */ one */ 1", Prim("Some", [Int(1)])),
    ("{ DROP ; NIL operation ; PAIR }", Seq([Prim("DROP"), Prim("NIL", [Prim("operation")]),
                                             Prim("PAIR")])),
]  # fmt: skip


@pytest.mark.parametrize(("text", "node"), PARSED)
def test_parse(text: str, node: Node) -> None:
    assert parse_expression(text) == node
    assert parse_expression(print_expression(node)) == node


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (Prim("Pair", [Prim("Left", [Bytes(b"\n")]), Seq([Int(1), Int(2)])]),
         "Pair (Left 0x0a) { 1 ; 2 }"),
        (Seq([Prim("Elt", [String("k"), Int(-1)])]), '{ Elt "k" -1 }'),
        (Prim("pair", [Prim("nat", annots=["%a"]), Prim("unit")], ["%p"]),
         "pair %p (nat %a) unit"),
        (String('a"b\\c\n'), '"a\\"b\\\\c\\n"'),
        (Seq([]), "{}"),
        (Prim("nat", annots=[":t"]), "nat :t"),
    ],
)  # fmt: skip
def test_print(node: Node, text: str) -> None:
    assert print_expression(node) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   # only a comment",
        "(1)",
        "((Pair 1 2))",
        "Pair 1 (",
        "(Pair 1 2",
        "Pair 1 2)",
        "{ 1 2 }",
        "{ 1 ; 2",
        "{ (Pair 1 2) }",
        "{ ;; }",
        "Unit ;",
        "1 2",
        "1a",
        "0x1",
        "0xag",
        "-0x12",
        "-",
        "-x",
        '"abc',
        '"a\nb"',
        '"\\q"',
        "Pair Unit %a",
        "/* unterminated",
        "Pair 1 \t 2",
        "Pair [1]",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(MichelsonSyntaxError):
        parse_expression(text)


def test_unknown_primitive_in_text() -> None:
    with pytest.raises(UnknownPrimitive):
        parse_expression("Pair (Foo 1) 2")
    with pytest.raises(MichelineError):
        parse_expression("Foo")


def test_syntax_error_position() -> None:
    with pytest.raises(MichelsonSyntaxError) as caught:
        parse_expression('Pair 1 "\\q"')
    assert caught.value.position == 8


# --- properties -----------------------------------------------------------------------------

_annotation = st.builds(
    lambda sigil, rest: sigil + rest,
    st.sampled_from("@:%$&!?"),
    st.text("abcXYZ019_.%@", max_size=8),
)
_leaves = st.one_of(
    st.builds(Int, st.integers()),
    st.builds(String, st.text(max_size=12)),
    st.builds(Bytes, st.binary(max_size=12)),
    st.builds(Prim, st.sampled_from(PRIMITIVES)),
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Seq, st.lists(children, max_size=4)),
        st.builds(
            Prim,
            st.sampled_from(PRIMITIVES),
            st.lists(children, max_size=4),
            st.lists(_annotation, max_size=2),
        ),
    )


nodes = st.recursive(_leaves, _extend, max_leaves=25)


@settings(max_examples=200)
@given(nodes)
def test_binary_round_trip(node: Node) -> None:
    data = encode_expression(node)
    assert decode_expression(data) == node
    assert expression_length(b"\xff" + data + b"\xff", 1) == len(data) + 1


@settings(max_examples=200)
@given(nodes)
def test_text_round_trip(node: Node) -> None:
    assert parse_expression(print_expression(node)) == node


@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_fails_only_with_decode_error(data: bytes) -> None:
    try:
        node = decode_expression(data)
    except DecodeError:
        return
    assert isinstance(decode_expression(encode_expression(node)), type(node))
