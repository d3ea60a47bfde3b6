"""RFC 6962 / RFC 9162 Merkle tree hashing for the append-only audit log.

Pure functions over SHA-256 (``hashlib`` only), so a stream can be checked anywhere: in the
service, in a test, or by an auditor holding an exported log.

Terms follow RFC 9162 §2.1:

* a *leaf hash* is ``SHA-256(0x00 || entry)`` (:func:`leaf_hash`); an *interior node* is
  ``SHA-256(0x01 || left || right)`` (:func:`node_hash`). The distinct prefixes are the
  second-preimage defence of RFC 6962 §2.1: a leaf can never be passed off as a node.
* Every function that takes ``leaves`` takes **leaf hashes**, not entries: the log stores the
  leaf hash of each event, and hashing twice would silently give a different tree.
* The *frontier* (a compact range, as in ``transparency-dev/merkle``'s ``compact`` package)
  of a tree of ``size`` leaves is the list of roots of the perfect subtrees given by the
  binary decomposition of ``size``, largest (leftmost) first. It is all the state an
  appender needs: an append costs O(log n) hashes and never re-reads the log.

Tree sizes are not authenticated by proofs: a proof only shows that the roots fit *some*
tree of the claimed sizes. Sizes must come from the same signed checkpoint as the roots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "frontier_append",
    "frontier_root",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash here (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() — the root of the empty tree (RFC 6962 §2.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one log entry (RFC 6962 §2.1)."""
    h = hashlib.sha256(_LEAF_PREFIX)
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node (RFC 6962 §2.1).

    ``left`` and ``right`` are 32-byte hashes; this primitive does not check them (it runs
    in every inner loop), the public functions below do.
    """
    h = hashlib.sha256(_NODE_PREFIX)
    h.update(left)
    h.update(right)
    return h.digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _check_hashes(values: Sequence[bytes], what: str) -> None:
    for i, value in enumerate(values):
        if not _is_hash(value):
            raise ValueError(f"{what}[{i}] is not a {HASH_SIZE}-byte hash")


def _split(n: int) -> int:
    """k, the largest power of two smaller than n, for n > 1 (RFC 6962 §2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) in hi - lo - 1 node hashes, for hi > lo.

    Bottom-up instead of the RFC's top-down recursion: pair neighbours from the left and
    carry an unpaired last node up unchanged. Because the RFC's left subtree is always a
    perfect tree of k = 2^i leaves, every left subtree is completed by pairing before the
    lone right part is hashed in, so the two constructions give the same tree.
    """
    level = list(leaves[lo:hi])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]), the Merkle tree hash of ``leaves`` (RFC 6962 §2.1), in O(n).

    ``leaves`` are leaf hashes (:func:`leaf_hash` of each entry). The empty tree's root is
    :data:`EMPTY_ROOT`; a one-leaf tree's root is its leaf hash.
    """
    _check_hashes(leaves, "leaves")
    if not leaves:
        return EMPTY_ROOT
    return _mth(leaves, 0, len(leaves))


def frontier_append(frontier: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The frontier of the tree of ``size + 1`` leaves, from that of ``size`` leaves.

    ``frontier`` holds one perfect-subtree root per set bit of ``size``, largest first;
    ``leaf`` is the new leaf hash. Appending is binary increment: the new leaf is a subtree
    of one leaf, and while the lowest bit of the size carries, the two equal-sized subtrees
    at the right edge merge into one of twice the size (they are siblings in the RFC 6962
    §2.1 tree because the left one is complete). O(log n) hashes; ``frontier`` is not
    modified.

    Raises ValueError when ``size`` is negative, ``frontier`` does not have one entry per set
    bit of ``size`` (a frontier out of step with its size would silently fork the tree), or
    a hash is not 32 bytes.
    """
    if size < 0:
        raise ValueError("size must be >= 0")
    if len(frontier) != size.bit_count():
        raise ValueError(f"a frontier for size {size} has {size.bit_count()} entries")
    _check_hashes(frontier, "frontier")
    if not _is_hash(leaf):
        raise ValueError(f"leaf is not a {HASH_SIZE}-byte hash")
    merged = list(frontier)
    node = leaf
    carry = size
    while carry & 1:
        node = node_hash(merged.pop(), node)
        carry >>= 1
    merged.append(node)
    return merged


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """MTH of the tree whose frontier this is (RFC 6962 §2.1); EMPTY_ROOT when empty.

    Folds from the right: in the RFC tree the smallest (rightmost) subtrees are the deepest
    right children, so hash(second-smallest, smallest) first, then work leftwards.
    """
    _check_hashes(frontier, "frontier")
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        acc = node_hash(subtree, acc)
    return acc


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) over ``leaves[:size]`` (RFC 6962 §2.1.1), leaf-to-root order.

    The audit path of leaf ``index`` in the tree of the first ``size`` leaves: the sibling
    subtree hash at every level. O(size) hashes: the siblings partition the other leaves.

    Raises ValueError unless 0 <= index < size <= len(leaves), or when a leaf is not a
    32-byte hash.
    """
    if not 0 <= index < size <= len(leaves):
        raise ValueError("need 0 <= index < size <= len(leaves)")
    _check_hashes(leaves[:size], "leaves")
    # Walk down from the root; the RFC lists the path bottom-up, hence the reverse.
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaves, lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) over ``leaves[:second]`` (RFC 6962 §2.1.2).

    Shows the tree of the first ``first`` leaves is a prefix of the tree of ``second``
    leaves. Empty when first == second. O(second) hashes.

    Raises ValueError unless 0 < first <= second <= len(leaves), or when a leaf is not a
    32-byte hash. (A proof from the empty tree needs no hashes; verify_consistency accepts
    first == 0 with an empty proof.)
    """
    if not 0 < first <= second <= len(leaves):
        raise ValueError("need 0 < first <= second <= len(leaves)")
    _check_hashes(leaves[:second], "leaves")
    # SUBPROOF(m, D[lo:hi], complete) walked iteratively from the top. ``complete`` stays
    # true while the old tree is a left-aligned prefix we descend into on the left: its root
    # is then one the verifier already holds, so it is left out of the proof.
    proof: list[bytes] = []
    m, lo, hi = first, 0, second
    complete = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_mth(leaves, lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the verifier cannot know this subtree.
        proof.append(_mth(leaves, lo, hi))
    proof.reverse()
    return proof


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size``
    leaves with root hash ``root`` (RFC 9162 §2.1.3.2).

    Never raises: malformed input (index >= size, negative sizes, hashes that are not 32
    bytes, a proof too short or too long) is simply not a proof. ``size`` must come from the
    same signed checkpoint as ``root``; see the module docstring.
    """
    if not (_is_size(index) and _is_size(size) and index < size):
        return False
    if not (_is_hash(leaf) and _is_hash(root)) or not all(_is_hash(p) for p in proof):
        return False
    # fn is the node on the path, sn the last node of the tree, both at the current level.
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False  # more proof than tree: the path already reached the root
        if fn & 1 or fn == sn:
            # We are a right child, or the rightmost node with no right sibling.
            r = node_hash(p, r)
            if not fn & 1:
                # Rightmost and unpaired: this node is carried up unchanged (RFC 6962's
                # lone right subtree), so skip the levels where it has no sibling.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # sn == 0 means exactly the right number of levels were climbed (no truncated proof).
    # Roots are public, so a plain comparison leaks nothing worth a constant-time compare.
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``first`` leaves with root ``first_root`` is a
    prefix of the tree of ``second`` leaves with root ``second_root`` (RFC 9162 §2.1.4.2).

    Edge cases, as in RFC 9162 §2.1.4 and ``transparency-dev/merkle``: first == second
    needs an empty proof and equal roots; first == 0 < second is trivially consistent (the
    empty tree is a prefix of every tree) and needs an empty proof; first > second is
    never consistent. Never raises on malformed input; returns False instead. The sizes
    must come from the same signed checkpoints as the roots.
    """
    if not (_is_size(first) and _is_size(second) and first <= second):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    if first == second:
        return len(proof) == 0 and _is_hash(first_root) and first_root == second_root
    if first == 0:
        return len(proof) == 0
    if not (_is_hash(first_root) and _is_hash(second_root)) or len(proof) == 0:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        # The old tree is a perfect left subtree of the new one: PROOF leaves its root out
        # because the verifier has it, so it starts the path here.
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    # Climb while the old tree's last node is a right child: its parent is then complete in
    # both trees. The path starts at the largest such subtree ending at leaf first - 1.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # fr rebuilds the old root, sr the new root, from the same path.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False  # more proof than tree
        if fn & 1 or fn == sn:
            # c is a left sibling: it belongs to both trees.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                # Rightmost and unpaired in the old tree: carried up unchanged.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # c is a right sibling: it holds only leaves appended after the old tree.
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
