"""The line colours of every chart: the web UI (sent in ``/api/info``) and ``modeltrack plot``.

One list, so a version has the same colour in the browser and in the PNG: the ``i``-th
version of a comparison is drawn in ``PALETTE[i % len(PALETTE)]``. The colours are
Observable's colour-blind-friendly categorical scheme.
"""

from __future__ import annotations

#: line colours, in the order versions (or metrics of one version) are drawn
PALETTE: list[str] = [
    "#4269d0",
    "#efb118",
    "#ff725c",
    "#6cc5b0",
    "#3ca951",
    "#ff8ab7",
    "#a463f2",
    "#97bbf5",
    "#9c6b4e",
    "#9498a0",
]
