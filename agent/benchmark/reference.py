"""Published peak figures per GPU model, and which model an NVML device name is.

The figures (``reference_table.REFERENCE_GPUS``) come from NVIDIA's datasheets and architecture whitepapers, each
entry naming its source. They are peaks at the rated boost clock, never measurements: the score uses
them for its scale, the outlier check to say what a healthy GPU of the model achieves.

Conventions, so that measured and published figures compare like with like:

- tensor figures are **dense** (the "with sparsity" datasheet figures halved);
- FP16/BF16 tensor figures are the rate **with FP32 accumulate**, which is what PyTorch and CuPy use
  for half-precision products. GeForce cards run it at half their FP16-accumulate rate, and so does the L40
  by its datasheet; professional and other data-centre cards run it at the full rate;
- where a document gives no dense FP32-accumulate figure, the entry says how it was derived
  (Tensor Cores × FLOP per clock × boost clock, as the whitepapers compute theirs);
- VRAM is the marketed capacity (GiB for GDDR; the driver reports slightly less for HBM parts);
- the host link is the card's PCIe generation and lane count; its rate is computed (``pcie_gbps``).
"""

from __future__ import annotations

import re

from sparecycles.agent.benchmark.reference_table import REFERENCE_GPUS, GpuReference

__all__ = ["REFERENCE_GPUS", "GpuReference", "match_reference", "normalise_name", "reference_by_key"]


def normalise_name(name: str) -> str:
    """A device name without vendor and brand words, case, or punctuation differences.

    "NVIDIA GeForce RTX 3060", "GeForce RTX 3060" (older drivers) and "nvidia geforce rtx 3060" are one
    name; "NVIDIA A100-SXM4-80GB" becomes "a100 sxm4 80gb".
    """
    words = re.split(r"[\s\-_/]+", name.strip().lower())
    return " ".join(word for word in words if word and word not in ("nvidia", "geforce"))


def match_reference(
    name: str, vram_total_bytes: int | None = None, table: tuple[GpuReference, ...] | None = None
) -> GpuReference | None:
    """The reference entry for an NVML device name, ``None`` for a model the table does not know.

    Only whole names match: "RTX 3060" is never taken for "RTX 3060 Ti", nor a laptop GPU for the
    desktop card it is named after. Where one name covers variants with different memory (the RTX 3060
    with 12 or 8 GB), the one whose capacity is nearest the reported total is chosen.
    """
    table = REFERENCE_GPUS if table is None else table
    wanted = normalise_name(name)
    candidates = [entry for entry in table if wanted in {normalise_name(known) for known in entry.nvml_names}]
    if not candidates:
        return None
    if vram_total_bytes is None or len(candidates) == 1:
        return candidates[0]
    vram_gib = vram_total_bytes / 1024**3
    return min(candidates, key=lambda entry: abs(entry.vram_gib - vram_gib))


def reference_by_key(key: str, table: tuple[GpuReference, ...] | None = None) -> GpuReference:
    """The entry with ``key``; KeyError names the known keys' count when there is none."""
    table = REFERENCE_GPUS if table is None else table
    for entry in table:
        if entry.key == key:
            return entry
    raise KeyError(f"no reference GPU {key!r} among {len(table)}")
