"""Plain-text tables for terminal output (no colour codes: output is often piped into logs)."""

__all__ = ["format_table"]


def format_table(headers, rows, align=None) -> str:
    """Columns padded to their widest cell; ``align`` is a string of 'l'/'r' per column (default: text left,
    numbers right)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if align is None:
        align = "".join("r" if rows and isinstance(rows[0][i], (int, float)) else "l" for i in range(len(headers)))
    def line(row):
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])
