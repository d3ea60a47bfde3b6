"""RFC 6962 / RFC 9162 Merkle hashing: known answers, frontier, inclusion and consistency.

The known-answer vectors are the Certificate Transparency ones shared by
``google/certificate-transparency-go`` and ``transparency-dev/merkle`` (``proof/verify_test.go``):
eight leaf entries, the roots of their first 1..8, and a few proofs.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Iterator

import pytest

from services.audit_log import merkle
from services.audit_log.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    frontier_append,
    frontier_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [leaf_hash(e) for e in ENTRIES]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# (index, size, proof) from transparency-dev/merkle; its table counts leaves from 1.
KNOWN_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (first, second, proof) from transparency-dev/merkle.
KNOWN_CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
MAX_SIZE = 40


def random_leaves(n: int, seed: int = 6962) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(rng.randrange(0, 64))) for _ in range(n)]


def flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def frontiers(leaves: list[bytes]) -> Iterator[list[bytes]]:
    """The frontier of every prefix of ``leaves``, sizes 0..len(leaves)."""
    frontier: list[bytes] = []
    yield frontier
    for size, leaf in enumerate(leaves):
        frontier = frontier_append(frontier, size, leaf)
        yield frontier


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, transcribed literally (recursive, slices), as a reference."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path_ref(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), transcribed literally."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path_ref(m, leaves[:k]), mth(leaves[k:])]
    return [*path_ref(m - k, leaves[k:]), mth(leaves[:k])]


def subproof_ref(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[n], b), transcribed literally."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof_ref(m, leaves[:k], b), mth(leaves[k:])]
    return [*subproof_ref(m - k, leaves[k:], False), mth(leaves[:k])]


# --- hashing primitives and roots -------------------------------------------------------


def test_primitives() -> None:
    # RFC 6962 §2.1: leaves and nodes are domain-separated by a one-byte prefix.
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(b"") == ROOTS[0]
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert leaf_hash(b"x") != node_hash(b"", b"x")


def test_empty_root() -> None:
    assert root([]) == EMPTY_ROOT
    assert frontier_root([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_known_roots(size: int) -> None:
    assert root(LEAVES[:size]) == ROOTS[size - 1]
    assert mth(LEAVES[:size]) == ROOTS[size - 1]


def test_root_matches_literal_rfc_definition() -> None:
    leaves = random_leaves(130)
    for n in range(131):
        assert root(leaves[:n]) == mth(leaves[:n])


def test_root_takes_leaf_hashes_not_entries() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        root([b"raw entry"])
    untyped: Callable[..., bytes] = root  # to pass what the types forbid
    with pytest.raises(ValueError, match="32-byte"):
        untyped([LEAVES[0], bytearray(LEAVES[1])])


def counting_node_hash(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    calls = 0
    real = merkle.node_hash

    def counted(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return real(left, right)

    monkeypatch.setattr(merkle, "node_hash", counted)

    def count() -> int:
        nonlocal calls
        seen, calls = calls, 0
        return seen

    return count


def test_work_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    leaves = random_leaves(1000)
    count = counting_node_hash(monkeypatch)
    merkle.root(leaves)
    assert count() == 999  # a tree of n leaves has n - 1 interior nodes
    merkle.inclusion_proof(leaves, 617, 1000)
    assert count() < 1000  # the siblings on the path cover disjoint leaves
    merkle.consistency_proof(leaves, 617, 1000)
    assert count() < 1000
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaves):
        frontier = merkle.frontier_append(frontier, size, leaf)
        assert count() <= size.bit_length()  # O(log n) per append
    merkle.frontier_root(frontier)
    assert count() == len(frontier) - 1


# --- frontier (compact range) -----------------------------------------------------------


def test_frontier_matches_root_for_every_size() -> None:
    leaves = random_leaves(200)
    for n, frontier in enumerate(frontiers(leaves)):
        assert len(frontier) == n.bit_count()
        assert frontier_root(frontier) == root(leaves[:n])


def test_frontier_known_roots() -> None:
    for n, frontier in enumerate(frontiers(LEAVES)):
        if n:
            assert frontier_root(frontier) == ROOTS[n - 1]


def test_frontier_entries_are_perfect_subtrees() -> None:
    leaves = random_leaves(13)  # 13 = 8 + 4 + 1
    *_, frontier = frontiers(leaves)
    assert frontier == [root(leaves[:8]), root(leaves[8:12]), leaves[12]]


def test_frontier_append_does_not_modify_its_argument() -> None:
    frontier = [LEAVES[0]]
    after = frontier_append(frontier, 1, LEAVES[1])
    assert frontier == [LEAVES[0]]
    assert after == [ROOTS[1]]


@pytest.mark.parametrize(
    ("frontier", "size", "leaf"),
    [
        ([], -1, LEAVES[0]),
        ([], 1, LEAVES[0]),  # size 1 needs one subtree
        ([LEAVES[0]], 2, LEAVES[1]),  # size 2 has one subtree: fine count, see next
        ([LEAVES[0], LEAVES[1]], 2, LEAVES[2]),  # but not two
        ([LEAVES[0]], 0, LEAVES[1]),
        ([b"short"], 1, LEAVES[1]),
        ([LEAVES[0]], 1, b"raw entry"),
    ],
)
def test_frontier_append_rejects_bad_input(frontier: list[bytes], size: int, leaf: bytes) -> None:
    if size == 2 and len(frontier) == 1:
        frontier_append(frontier, size, leaf)  # the valid control case
        return
    with pytest.raises(ValueError, match=r"size|frontier|leaf"):
        frontier_append(frontier, size, leaf)


def test_frontier_root_rejects_bad_hashes() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        frontier_root([LEAVES[0], b"short"])


# --- inclusion proofs -------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "expected"), KNOWN_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    proof = inclusion_proof(LEAVES, index, size)
    assert [p.hex() for p in proof] == expected
    assert verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size - 1])
    # Probes from transparency-dev/merkle's corruptInclusionProof.
    good_root, leaf = ROOTS[size - 1], LEAVES[index]
    for i, n in [(index - 1, size), (index + 1, size), (index ^ 2, size)]:
        assert not verify_inclusion(leaf, i, n, proof, good_root)
    assert not verify_inclusion(leaf, index, size * 2, proof, good_root)
    assert not verify_inclusion(leaf, index, size // 2, proof, good_root)
    assert not verify_inclusion(leaf, index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(leaf, index, size, proof, SOME_HASH)
    assert not verify_inclusion(leaf, index, size, [*proof, good_root], good_root)
    assert not verify_inclusion(leaf, index, size, [good_root, *proof], good_root)
    if len(proof) > 1:
        assert not verify_inclusion(leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], good_root)


def rfc_example_tree() -> tuple[list[bytes], dict[str, bytes]]:
    r"""The 7-leaf tree of RFC 6962 §2.1.3, with the RFC's names for its nodes.

                hash
               /    \
              k      l
             / \    / \
            g   h  i   j
           / \ / \ / \  |
           a b c d e f  d6
    """
    d = random_leaves(7)
    node = dict(zip("abcdef", d[:6], strict=True))
    node["j"] = d[6]
    node["g"] = node_hash(node["a"], node["b"])
    node["h"] = node_hash(node["c"], node["d"])
    node["i"] = node_hash(node["e"], node["f"])
    node["k"] = node_hash(node["g"], node["h"])
    node["l"] = node_hash(node["i"], node["j"])
    node["hash"] = node_hash(node["k"], node["l"])
    assert root(d) == node["hash"]
    return d, node


def test_rfc6962_example_inclusion() -> None:
    d, node = rfc_example_tree()

    def path(index: int) -> str:
        names = {v: k for k, v in node.items()}
        return " ".join(names[p] for p in inclusion_proof(d, index, 7))

    # RFC 6962 §2.1.3: the audit path of d0 is [b, h, l], of d3 [c, g, l], of d4 [f, j, k].
    assert path(0) == "b h l"
    assert path(3) == "c g l"
    assert path(4) == "f j k"
    # d6 is the lone right leaf: it is carried up to j unchanged, so its path is [i, k].
    assert path(6) == "i k"
    for index in range(7):
        assert verify_inclusion(d[index], index, 7, inclusion_proof(d, index, 7), node["hash"])


def test_single_leaf_tree() -> None:
    assert inclusion_proof(LEAVES, 0, 1) == []
    assert verify_inclusion(LEAVES[0], 0, 1, [], ROOTS[0])
    assert not verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[1])
    assert not verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], ROOTS[0])


def test_inclusion_exhaustive() -> None:
    leaves = random_leaves(MAX_SIZE)
    roots = [root(leaves[:n]) for n in range(MAX_SIZE + 1)]
    for size in range(1, MAX_SIZE + 1):
        r = roots[size]
        for index in range(size):
            leaf = leaves[index]
            proof = inclusion_proof(leaves, index, size)
            assert proof == path_ref(index, leaves[:size])
            assert verify_inclusion(leaf, index, size, proof, r), (index, size)
            # Wrong leaf, wrong root.
            assert not verify_inclusion(flip(leaf), index, size, proof, r)
            assert not verify_inclusion(leaves[(index + 1) % MAX_SIZE], index, size, proof, r)
            assert not verify_inclusion(leaf, index, size, proof, flip(r))
            if size > 1:
                assert not verify_inclusion(leaf, index, size, proof, roots[size - 1])
            # Every other index of the same tree: a proof pins its position.
            for other in range(size):
                if other != index:
                    assert not verify_inclusion(leaf, other, size, proof, r), (index, other)
            # Tampered element, truncated, extended at either end.
            for i in range(len(proof)):
                tampered = [*proof[:i], flip(proof[i]), *proof[i + 1 :]]
                assert not verify_inclusion(leaf, index, size, tampered, r)
            if proof:
                assert not verify_inclusion(leaf, index, size, proof[:-1], r)
                assert not verify_inclusion(leaf, index, size, proof[1:], r)
            assert not verify_inclusion(leaf, index, size, [*proof, r], r)
            assert not verify_inclusion(leaf, index, size, [*proof, SOME_HASH], r)
            assert not verify_inclusion(leaf, index, size, [r, *proof], r)
            # Out-of-range claims.
            assert not verify_inclusion(leaf, size, size, proof, r)
            assert not verify_inclusion(leaf, -1, size, proof, r)


def test_inclusion_proof_of_a_prefix_ignores_later_leaves() -> None:
    leaves = random_leaves(20)
    assert inclusion_proof(leaves, 3, 11) == inclusion_proof(leaves[:11], 3, 11)


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (6, 5), (0, 0), (0, 9), (2, 1)])
def test_inclusion_proof_rejects_bad_arguments(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="index"):
        inclusion_proof(LEAVES, index, size)


def test_inclusion_proof_rejects_non_hash_leaves() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        inclusion_proof([*LEAVES[:3], b"raw"], 0, 4)


@pytest.mark.parametrize(
    "args",
    [
        (LEAVES[0], 0, 0, [], EMPTY_ROOT),  # empty tree has no leaves
        (LEAVES[0], 1, 0, [], EMPTY_ROOT),
        (LEAVES[0], 2, 1, [], ROOTS[0]),
        (LEAVES[0], -1, 1, [], ROOTS[0]),
        (LEAVES[0], 0, -1, [], ROOTS[0]),
        (b"", 0, 1, [], b""),  # wrong hash sizes, even if equal
        (LEAVES[0], 0, 1, [], b""),
        (LEAVES[1], 1, 2, [b""], ROOTS[1]),
        (LEAVES[1], 1, 2, [LEAVES[0] + b"x"], ROOTS[1]),
        (LEAVES[1], 1, 2, ["not bytes"], ROOTS[1]),
        (LEAVES[1], 1, 2, [None], ROOTS[1]),
        (LEAVES[1], "1", 2, [LEAVES[0]], ROOTS[1]),
        (LEAVES[1], 1, None, [LEAVES[0]], ROOTS[1]),
        (None, 1, 2, [LEAVES[0]], ROOTS[1]),
        (LEAVES[1], 1, 2, [LEAVES[0]], None),
    ],
)
def test_verify_inclusion_never_raises(args: tuple[object, ...]) -> None:
    untyped: Callable[..., bool] = verify_inclusion  # to pass what the types forbid
    assert untyped(*args) is False


# --- consistency proofs -----------------------------------------------------------------


@pytest.mark.parametrize(("first", "second", "expected"), KNOWN_CONSISTENCY)
def test_known_consistency_proofs(first: int, second: int, expected: list[str]) -> None:
    proof = consistency_proof(LEAVES, first, second)
    assert [p.hex() for p in proof] == expected
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    assert verify_consistency(first, second, r1, r2, proof)
    # Probes from transparency-dev/merkle's corruptConsistencyProof.
    for m, n in [
        (first - 1, second),
        (first + 1, second),
        (first ^ 2, second),
        (first, second * 2),
        (first, second // 2),
    ]:
        assert not verify_consistency(m, n, r1, r2, proof), (m, n)
    assert not verify_consistency(first, second, r2, r1, proof)
    assert not verify_consistency(first, second, r1, r2, [])
    for extra in (r1, r2, proof[0]):
        assert not verify_consistency(first, second, r1, r2, [*proof, extra])
        assert not verify_consistency(first, second, r1, r2, [extra, *proof])


def test_rfc6962_example_consistency() -> None:
    d, node = rfc_example_tree()

    def proof(first: int) -> str:
        names = {v: k for k, v in node.items()}
        return " ".join(names[p] for p in consistency_proof(d, first, 7))

    # RFC 6962 §2.1.3: PROOF(3, D[7]) = [c, d, g, l], PROOF(4, D[7]) = [l],
    # PROOF(6, D[7]) = [i, j, k].
    assert proof(3) == "c d g l"
    assert proof(4) == "l"
    assert proof(6) == "i j k"
    assert proof(7) == ""
    for first in range(1, 8):
        assert verify_consistency(
            first, 7, root(d[:first]), node["hash"], consistency_proof(d, first, 7)
        )


def test_consistency_exhaustive() -> None:
    leaves = random_leaves(MAX_SIZE)
    roots = [root(leaves[:n]) for n in range(MAX_SIZE + 1)]
    for second in range(1, MAX_SIZE + 1):
        r2 = roots[second]
        for first in range(1, second + 1):
            r1 = roots[first]
            proof = consistency_proof(leaves, first, second)
            assert proof == subproof_ref(first, leaves[:second], True)
            assert verify_consistency(first, second, r1, r2, proof), (first, second)
            # Never to the past, and the empty tree is a prefix of every tree.
            assert not verify_consistency(second, first, r2, r1, proof) or first == second
            assert verify_consistency(0, second, EMPTY_ROOT, r2, [])
            if first == second:
                assert proof == []
                assert not verify_consistency(first, second, r1, flip(r2), [])
                assert not verify_consistency(first, second, r1, r2, [r1])
                continue
            assert proof
            # Wrong or swapped roots.
            assert not verify_consistency(first, second, r2, r1, proof)
            assert not verify_consistency(first, second, flip(r1), r2, proof)
            assert not verify_consistency(first, second, r1, flip(r2), proof)
            assert not verify_consistency(first, second, roots[first - 1], r2, proof)
            # Every other old size against the same new tree: a proof pins the old size.
            for other in range(1, second):
                if other != first:
                    assert not verify_consistency(other, second, r1, r2, proof), (first, other)
            assert not verify_consistency(first, second, r1, r2, [])
            assert not verify_consistency(0, second, r1, r2, proof)
            # Tampered element, truncated, extended at either end.
            for i in range(len(proof)):
                tampered = [*proof[:i], flip(proof[i], 4), *proof[i + 1 :]]
                assert not verify_consistency(first, second, r1, r2, tampered)
            assert not verify_consistency(first, second, r1, r2, proof[:-1])
            assert not verify_consistency(first, second, r1, r2, proof[1:])
            for extra in (r1, r2, SOME_HASH):
                assert not verify_consistency(first, second, r1, r2, [*proof, extra])
                assert not verify_consistency(first, second, r1, r2, [extra, *proof])


def test_consistency_equal_and_empty_sizes() -> None:
    # As transparency-dev/merkle's TestVerifyConsistency: equal sizes need equal roots and
    # no proof; from size 0 anything follows, with no proof.
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, SOME_HASH, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert verify_consistency(0, 1, EMPTY_ROOT, ROOTS[0], [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, ROOTS[0], [EMPTY_ROOT])
    assert verify_consistency(1, 1, ROOTS[0], ROOTS[0], [])
    assert not verify_consistency(1, 1, ROOTS[0], ROOTS[1], [])
    assert not verify_consistency(1, 1, ROOTS[0], ROOTS[0], [EMPTY_ROOT])
    assert not verify_consistency(1, 0, ROOTS[0], EMPTY_ROOT, [])
    assert not verify_consistency(2, 1, ROOTS[1], ROOTS[0], [])
    assert not verify_consistency(1, 2, ROOTS[0], ROOTS[1], [])


def test_consistency_proof_of_a_prefix_ignores_later_leaves() -> None:
    leaves = random_leaves(20)
    assert consistency_proof(leaves, 5, 11) == consistency_proof(leaves[:11], 5, 11)


def test_sizes_are_authenticated_by_checkpoints_not_proofs() -> None:
    # The proof of d0 in the 3-leaf tree, [b, c], hashes exactly like a proof in a 4-leaf
    # tree whose right half happens to hash to c. So a claimed size must be signed together
    # with the root, as audit checkpoints do; the verifiers cannot tell.
    proof = inclusion_proof(LEAVES, 0, 3)
    assert verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[2])
    assert verify_consistency(1, 4, ROOTS[0], ROOTS[2], consistency_proof(LEAVES, 1, 3))


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 3), (-1, 3), (4, 3), (3, 9), (9, 9)])
def test_consistency_proof_rejects_bad_arguments(first: int, second: int) -> None:
    with pytest.raises(ValueError, match="first"):
        consistency_proof(LEAVES, first, second)


def test_consistency_proof_rejects_non_hash_leaves() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        consistency_proof([*LEAVES[:3], b"raw"], 2, 4)


@pytest.mark.parametrize(
    "args",
    [
        (-1, 2, ROOTS[0], ROOTS[1], []),
        (1, -2, ROOTS[0], ROOTS[1], []),
        ("1", 2, ROOTS[0], ROOTS[1], [LEAVES[1]]),
        (1, None, ROOTS[0], ROOTS[1], [LEAVES[1]]),
        (1, 2, None, ROOTS[1], [LEAVES[1]]),
        (1, 2, ROOTS[0], b"", [LEAVES[1]]),
        (1, 2, ROOTS[0], ROOTS[1], [b""]),
        (1, 2, ROOTS[0], ROOTS[1], ["text"]),
        (1, 2, ROOTS[0], ROOTS[1], [LEAVES[1] + b"\x00"]),
        (1, 1, b"", b"", []),  # equal, but not hashes
        (0, 0, None, None, []),
    ],
)
def test_verify_consistency_never_raises(args: tuple[object, ...]) -> None:
    untyped: Callable[..., bool] = verify_consistency  # to pass what the types forbid
    assert untyped(*args) is False


def test_round_trip_through_a_growing_log() -> None:
    # How the audit log uses this: append through the frontier, sign (size, root) now and
    # then, and later prove entries and growth against the signed heads.
    entries = [f"event {i}".encode() for i in range(57)]
    leaves: list[bytes] = []
    frontier: list[bytes] = []
    heads: list[tuple[int, bytes]] = []
    for size, entry in enumerate(entries):
        leaves.append(leaf_hash(entry))
        frontier = frontier_append(frontier, size, leaves[-1])
        if (size + 1) % 10 == 0 or size + 1 == len(entries):
            heads.append((size + 1, frontier_root(frontier)))
    for (old, old_root), (new, new_root) in itertools.pairwise(heads):
        assert verify_consistency(old, new, old_root, new_root, consistency_proof(leaves, old, new))
    size, head = heads[-1]
    for index in (0, 9, 31, 56):
        proof = inclusion_proof(leaves, index, size)
        assert verify_inclusion(leaf_hash(entries[index]), index, size, proof, head)
