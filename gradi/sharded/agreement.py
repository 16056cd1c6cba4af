"""Before any work, the processes of a multi-process run check that they solve one problem.

Each process of a run is given its own arguments and reads its own copy of D (its rows of it),
so nothing but a check makes them the same problem. Two checks, each a collective of a fixed
shape (a mismatch of shapes would abort the collective itself), whose outcome every process
computes from the same exchanged numbers, so that all refuse together with the same message:

- ``agree``: the settings (N, dim, dtype, lr, niter, seed, backend, a checksum of X0) are equal
  in every process; the first collective of a solve, before any whose shape depends on them;
- ``check_symmetric``: the rows each process holds fit together into one symmetric D. Each
  process checks its own rows against its own copy's columns (gradi.validation), which cannot
  see two processes given different matrices; here every process sums its blocks of D, one per
  process's rows, weighted by two fixed positive random vectors u and v, both ways
  (u_p' D_pq v_q and v_p' D_pq u_q), and D_pq must be the transpose of D_qp: the two sums of
  each pair of blocks must agree to the symmetry tolerance of every entry. Reading one's own
  rows once, it needs O(N) memory and exchanges 2 K^2 numbers (K processes).

Both use only the group's ``sum`` (gradi.group), each process filling its row of a table.
"""

import zlib

import numpy as np

from ..problem import row_blocks

WEIGHTS_SEED = 20260  # the weights must be the same in every process: a fixed seed
TEXT_BYTES = 32  # each setting is exchanged as this many bytes of text


def agree(group, index, count, settings):
    """Refuse (ValueError) unless every process has the same ``settings``, {name: value}.

    Each value is compared as text (``_text``: numbers exactly, arrays by a checksum), so the
    exchange has the same shape in every process whatever the values; the message names each
    setting that differs and each process's value.
    """
    mine = np.concatenate([_encoded(_text(value)) for value in settings.values()])
    table = _table(group, index, count, mine).reshape(count, len(settings), TEXT_BYTES)
    differing = []
    for column, name in enumerate(settings):
        texts = [bytes(row.astype(np.uint8)).rstrip(b"\0").decode(errors="replace") for row in table[:, column]]
        if len(set(texts)) > 1:
            differing.append(f"{name} (" + ", ".join(f"process {process}: {text}"
                                                     for process, text in enumerate(texts)) + ")")
    if differing:
        raise ValueError(f"the processes of this run were given different problems: "
                         f"{'; '.join(differing)}; start every process with the same arguments and input")


def check_symmetric(group, index, count, D, rows, tolerance):
    """Refuse (ValueError) unless the rows every process holds of D (``rows``: this process's
    [start, stop)) make one D symmetric to ``tolerance`` per entry (module docstring)."""
    n = D.shape[0]
    bounds = _table(group, index, count, np.array(rows, dtype=np.float64)).astype(np.int64)
    weights = np.random.default_rng(WEIGHTS_SEED).uniform(0.5, 1.5, size=(2, n))
    projected = np.zeros((2, n))  # u' D[rows] and v' D[rows]
    for first, last in row_blocks(rows[1], n, rows[0]):
        projected += weights[:, first:last] @ np.asarray(D[first:last], dtype=np.float64)
    blocks = [slice(start, stop) for start, stop in bounds]
    mine = np.array([[projected[0, block] @ weights[1, block] for block in blocks],   # u_p' D_pq v_q
                     [projected[1, block] @ weights[0, block] for block in blocks]])  # v_p' D_pq u_q
    sums = _table(group, index, count, mine.ravel()).reshape(count, 2, count)
    sizes = np.array([[weights[side, block].sum() for block in blocks] for side in (0, 1)])
    for p in range(count):
        for q in range(p + 1, count):
            for side in (0, 1):
                allowed = tolerance * sizes[side, p] * sizes[1 - side, q] * (1 + 1e-9)
                if abs(sums[p, side, q] - sums[q, 1 - side, p]) > allowed:
                    raise ValueError(
                        f"D is not the same matrix in every process of this run: the rows of "
                        f"process {p} ({bounds[p][0]}..{bounds[p][1] - 1}) and of process {q} "
                        f"({bounds[q][0]}..{bounds[q][1] - 1}) are not each other's transpose, so "
                        f"the D they make together is not symmetric; give every process the same "
                        f"distance file")


def _table(group, index, count, values):
    """Every process's ``values`` (one float64 vector of the same length), row by process."""
    table = np.zeros((count, values.size))
    table[index] = values
    return np.asarray(group.sum(table))


def _text(value):
    """A setting as at most TEXT_BYTES of text: numbers exactly (repr), arrays and longer texts
    by a checksum."""
    if isinstance(value, np.ndarray):
        return f"checksum {zlib.crc32(np.ascontiguousarray(value, dtype=np.float64).tobytes()):08x}"
    text = "none" if value is None else repr(value) if isinstance(value, float) else str(value)
    return text if len(text.encode()) <= TEXT_BYTES else f"checksum {zlib.crc32(text.encode()):08x}"


def _encoded(text):
    return np.frombuffer(text.encode().ljust(TEXT_BYTES, b"\0"), np.uint8).astype(np.float64)
