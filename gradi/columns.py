"""Plain-text tables: the one column aligner of every table gradi prints."""


def aligned(rows, right=(), width_of=None):
    """``rows`` (sequences of strings) as lines, each column padded to its widest cell.

    Columns whose index is in ``right`` are right-aligned (numbers), the others left-aligned;
    trailing spaces are dropped. ``width_of`` (a column count) limits which columns set the
    widths: cells past it are appended as they are (a long last column, e.g. a reason).
    """
    count = len(rows[0]) if width_of is None else width_of
    widths = [max(len(row[k]) for row in rows) for k in range(count)]
    return ["  ".join([*(cell.rjust(width) if k in right else cell.ljust(width)
                         for k, (cell, width) in enumerate(zip(row, widths))), *row[count:]]).rstrip()
            for row in rows]

