"""One way to make a figure for the CLI and the examples: Agg backend, legends, save, report."""

from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def figure(path: str, ncols: int = 1, figsize=(6, 4)):
    """Yield `(fig, axes)` (one row of `ncols` axes); on exit add the legends, save to `path`.

    Example:
      >>> import tempfile, os, jaxsoft.plots as plots
      >>> path = os.path.join(tempfile.mkdtemp(), "line.png")
      >>> with plots.figure(path) as (fig, ax):
      ...     _ = ax.plot([0, 1], [1, 0], label="a line")  # doctest: +ELLIPSIS
      wrote ...line.png
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install 'jaxsoft[examples]'") from err
    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    yield fig, axes
    for ax in np.atleast_1d(axes):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
