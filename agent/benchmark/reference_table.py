"""The reference table: NVIDIA's published peak figures for the GPUs SpareCycles expects to meet.

See ``reference`` for the conventions (dense tensor rates with FP32 accumulate, marketed VRAM). Each
entry names its source; where the source gives no dense FP32-accumulate tensor figure, the derivation
is stated (Tensor Cores × FLOP per clock per Tensor Core × boost clock, as NVIDIA's whitepapers compute
theirs). Check a new entry against its datasheet before adding it: the outlier check trusts this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparecycles.agent.benchmark.arithmetic import pcie_gbps


@dataclass(frozen=True)
class GpuReference:
    """One GPU model's published figures."""

    key: str  # stable identifier used in results, e.g. "h100-sxm"
    model: str  # for people, e.g. "H100 SXM5 80GB"
    nvml_names: tuple[str, ...]  # the device names NVML reports for it
    fp32_tflops: float
    fp16_tensor_tflops: float
    bf16_tensor_tflops: float | None  # None: no BF16 tensor support (Turing)
    memory_gbps: float
    vram_gib: float
    pcie_generation: int
    pcie_lanes: int
    board_power_w: float
    source: str

    @property
    def host_link_gbps(self) -> float:
        """The theoretical PCIe rate per direction, in GB/s."""
        return pcie_gbps(self.pcie_generation, self.pcie_lanes)

    @property
    def tensor_tflops(self) -> float:
        """The best half-precision tensor rate: BF16 where supported, else FP16."""
        return self.bf16_tensor_tflops if self.bf16_tensor_tflops is not None else self.fp16_tensor_tflops


_TURING = (
    "NVIDIA Turing GPU Architecture whitepaper, Appendix A (reference boost clocks, not Founders Edition); "
    "tensor: FP16 with FP32 accumulate, half the FP16-accumulate rate on GeForce"
)
_TURING_SUPER = (
    "NVIDIA GeForce RTX 20 SUPER specifications; tensor derived: Tensor Cores × 64 FLOP/clock "
    "(FP16 with FP32 accumulate on GeForce Turing) × boost clock"
)
_AMPERE = (
    "NVIDIA Ampere GA102 GPU Architecture whitepaper, Appendix A; tensor: FP16/BF16 with FP32 accumulate, dense "
    "(half the FP16-accumulate rate on GeForce)"
)
_AMPERE_SPECS = (
    "NVIDIA GeForce RTX 30 series specifications; tensor derived: Tensor Cores × 128 FLOP/clock "
    "(FP16/BF16 with FP32 accumulate on GeForce Ampere, as the GA102 whitepaper counts it) × boost clock"
)
_ADA = (
    "NVIDIA Ada GPU Architecture whitepaper, Appendix A; tensor: FP16/BF16 with FP32 accumulate, dense "
    "(half the FP16-accumulate rate on GeForce)"
)
_ADA_SPECS = (
    "NVIDIA GeForce RTX 40 series specifications; tensor derived: Tensor Cores × 128 FLOP/clock "
    "(FP16/BF16 with FP32 accumulate on GeForce Ada, as the Ada whitepaper counts it) × boost clock"
)
_BLACKWELL = (
    "NVIDIA RTX Blackwell GPU Architecture whitepaper, Appendix A; tensor: FP16/BF16 with FP32 accumulate, "
    "dense (half the FP16-accumulate rate on GeForce)"
)
_BLACKWELL_SPECS = (
    "NVIDIA GeForce RTX 50 series specifications; tensor derived: Tensor Cores × 128 FLOP/clock "
    "(FP16/BF16 with FP32 accumulate on GeForce Blackwell, as the RTX Blackwell whitepaper counts it) × boost clock"
)
_RTX_A = "datasheet; tensor: its with-sparsity figure halved (professional cards: full-rate FP32 accumulate)"
_RTX_ADA = "datasheet; tensor: its FP8-with-sparsity figure ÷ 4 (dense FP16, full-rate FP32 accumulate)"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (dense figures)"
_H100 = "NVIDIA H100 Tensor Core GPU datasheet; tensor: its with-sparsity figure halved"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet; tensor: its with-sparsity figure halved"

# One model per block, its figures on two lines, to read against a datasheet; the formatter would spread them.
# fmt: off
REFERENCE_GPUS: tuple[GpuReference, ...] = (
    # -- GeForce Turing: no BF16 -------------------------------------------------------------------
    GpuReference(
        key="rtx-2060", model="GeForce RTX 2060", nvml_names=("NVIDIA GeForce RTX 2060",),
        fp32_tflops=6.45, fp16_tensor_tflops=25.8, bf16_tensor_tflops=None,
        memory_gbps=336, vram_gib=6, pcie_generation=3, pcie_lanes=16, board_power_w=160,
        source=_TURING,
    ),
    GpuReference(
        key="rtx-2060-super", model="GeForce RTX 2060 SUPER", nvml_names=("NVIDIA GeForce RTX 2060 SUPER",),
        fp32_tflops=7.18, fp16_tensor_tflops=28.7, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=175,
        source=_TURING_SUPER,
    ),
    GpuReference(
        key="rtx-2070", model="GeForce RTX 2070", nvml_names=("NVIDIA GeForce RTX 2070",),
        fp32_tflops=7.46, fp16_tensor_tflops=29.9, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=175,
        source=_TURING,
    ),
    GpuReference(
        key="rtx-2070-super", model="GeForce RTX 2070 SUPER", nvml_names=("NVIDIA GeForce RTX 2070 SUPER",),
        fp32_tflops=9.06, fp16_tensor_tflops=36.2, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=215,
        source=_TURING_SUPER,
    ),
    GpuReference(
        key="rtx-2080", model="GeForce RTX 2080", nvml_names=("NVIDIA GeForce RTX 2080",),
        fp32_tflops=10.07, fp16_tensor_tflops=40.3, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=215,
        source=_TURING,
    ),
    GpuReference(
        key="rtx-2080-super", model="GeForce RTX 2080 SUPER", nvml_names=("NVIDIA GeForce RTX 2080 SUPER",),
        fp32_tflops=11.15, fp16_tensor_tflops=44.6, bf16_tensor_tflops=None,
        memory_gbps=496, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=250,
        source=_TURING_SUPER,
    ),
    GpuReference(
        key="rtx-2080-ti", model="GeForce RTX 2080 Ti", nvml_names=("NVIDIA GeForce RTX 2080 Ti",),
        fp32_tflops=13.45, fp16_tensor_tflops=53.8, bf16_tensor_tflops=None,
        memory_gbps=616, vram_gib=11, pcie_generation=3, pcie_lanes=16, board_power_w=250,
        source=_TURING,
    ),
    # -- GeForce Ampere ----------------------------------------------------------------------------
    GpuReference(
        key="rtx-3060", model="GeForce RTX 3060 12GB", nvml_names=("NVIDIA GeForce RTX 3060",),
        fp32_tflops=12.7, fp16_tensor_tflops=25.5, bf16_tensor_tflops=25.5,
        memory_gbps=360, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=170,
        source=_AMPERE_SPECS,
    ),
    GpuReference(
        key="rtx-3060-8gb", model="GeForce RTX 3060 8GB", nvml_names=("NVIDIA GeForce RTX 3060",),
        fp32_tflops=12.7, fp16_tensor_tflops=25.5, bf16_tensor_tflops=25.5,
        memory_gbps=240, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=170,
        source=_AMPERE_SPECS,
    ),
    GpuReference(
        key="rtx-3060-ti", model="GeForce RTX 3060 Ti", nvml_names=("NVIDIA GeForce RTX 3060 Ti",),
        fp32_tflops=16.2, fp16_tensor_tflops=32.4, bf16_tensor_tflops=32.4,
        memory_gbps=448, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=200,
        source=_AMPERE_SPECS,
    ),
    GpuReference(
        key="rtx-3070", model="GeForce RTX 3070", nvml_names=("NVIDIA GeForce RTX 3070",),
        fp32_tflops=20.3, fp16_tensor_tflops=40.6, bf16_tensor_tflops=40.6,
        memory_gbps=448, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=220,
        source=_AMPERE,
    ),
    GpuReference(
        key="rtx-3070-ti", model="GeForce RTX 3070 Ti", nvml_names=("NVIDIA GeForce RTX 3070 Ti",),
        fp32_tflops=21.7, fp16_tensor_tflops=43.5, bf16_tensor_tflops=43.5,
        memory_gbps=608, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=290,
        source=_AMPERE_SPECS,
    ),
    GpuReference(
        key="rtx-3080", model="GeForce RTX 3080 10GB", nvml_names=("NVIDIA GeForce RTX 3080",),
        fp32_tflops=29.8, fp16_tensor_tflops=59.5, bf16_tensor_tflops=59.5,
        memory_gbps=760, vram_gib=10, pcie_generation=4, pcie_lanes=16, board_power_w=320,
        source=_AMPERE,
    ),
    GpuReference(
        key="rtx-3080-12gb", model="GeForce RTX 3080 12GB", nvml_names=("NVIDIA GeForce RTX 3080",),
        fp32_tflops=30.6, fp16_tensor_tflops=61.3, bf16_tensor_tflops=61.3,
        memory_gbps=912, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=_AMPERE_SPECS,
    ),
    GpuReference(
        key="rtx-3080-ti", model="GeForce RTX 3080 Ti", nvml_names=("NVIDIA GeForce RTX 3080 Ti",),
        fp32_tflops=34.1, fp16_tensor_tflops=68.2, bf16_tensor_tflops=68.2,
        memory_gbps=912, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=_AMPERE_SPECS,
    ),
    GpuReference(
        key="rtx-3090", model="GeForce RTX 3090", nvml_names=("NVIDIA GeForce RTX 3090",),
        fp32_tflops=35.6, fp16_tensor_tflops=71, bf16_tensor_tflops=71,
        memory_gbps=936, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=_AMPERE,
    ),
    GpuReference(
        key="rtx-3090-ti", model="GeForce RTX 3090 Ti", nvml_names=("NVIDIA GeForce RTX 3090 Ti",),
        fp32_tflops=40, fp16_tensor_tflops=80, bf16_tensor_tflops=80,
        memory_gbps=1008, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=450,
        source=_AMPERE_SPECS,
    ),
    # -- GeForce Ada (the 4060 family has an x8 link) ----------------------------------------------
    GpuReference(
        key="rtx-4060", model="GeForce RTX 4060", nvml_names=("NVIDIA GeForce RTX 4060",),
        fp32_tflops=15.1, fp16_tensor_tflops=30.2, bf16_tensor_tflops=30.2,
        memory_gbps=272, vram_gib=8, pcie_generation=4, pcie_lanes=8, board_power_w=115,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4060-ti", model="GeForce RTX 4060 Ti 8GB", nvml_names=("NVIDIA GeForce RTX 4060 Ti",),
        fp32_tflops=22.1, fp16_tensor_tflops=44.1, bf16_tensor_tflops=44.1,
        memory_gbps=288, vram_gib=8, pcie_generation=4, pcie_lanes=8, board_power_w=160,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4060-ti-16gb", model="GeForce RTX 4060 Ti 16GB", nvml_names=("NVIDIA GeForce RTX 4060 Ti",),
        fp32_tflops=22.1, fp16_tensor_tflops=44.1, bf16_tensor_tflops=44.1,
        memory_gbps=288, vram_gib=16, pcie_generation=4, pcie_lanes=8, board_power_w=165,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4070", model="GeForce RTX 4070", nvml_names=("NVIDIA GeForce RTX 4070",),
        fp32_tflops=29.1, fp16_tensor_tflops=58.3, bf16_tensor_tflops=58.3,
        memory_gbps=504, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=200,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4070-super", model="GeForce RTX 4070 SUPER", nvml_names=("NVIDIA GeForce RTX 4070 SUPER",),
        fp32_tflops=35.5, fp16_tensor_tflops=71, bf16_tensor_tflops=71,
        memory_gbps=504, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=220,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4070-ti", model="GeForce RTX 4070 Ti", nvml_names=("NVIDIA GeForce RTX 4070 Ti",),
        fp32_tflops=40.1, fp16_tensor_tflops=80.2, bf16_tensor_tflops=80.2,
        memory_gbps=504, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=285,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4070-ti-super", model="GeForce RTX 4070 Ti SUPER", nvml_names=("NVIDIA GeForce RTX 4070 Ti SUPER",),
        fp32_tflops=44.1, fp16_tensor_tflops=88.2, bf16_tensor_tflops=88.2,
        memory_gbps=672, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=285,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4080", model="GeForce RTX 4080", nvml_names=("NVIDIA GeForce RTX 4080",),
        fp32_tflops=48.7, fp16_tensor_tflops=97.5, bf16_tensor_tflops=97.5,
        memory_gbps=716.8, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=320,
        source=_ADA,
    ),
    GpuReference(
        key="rtx-4080-super", model="GeForce RTX 4080 SUPER", nvml_names=("NVIDIA GeForce RTX 4080 SUPER",),
        fp32_tflops=52.2, fp16_tensor_tflops=104.4, bf16_tensor_tflops=104.4,
        memory_gbps=736, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=320,
        source=_ADA_SPECS,
    ),
    GpuReference(
        key="rtx-4090", model="GeForce RTX 4090", nvml_names=("NVIDIA GeForce RTX 4090",),
        fp32_tflops=82.6, fp16_tensor_tflops=165.2, bf16_tensor_tflops=165.2,
        memory_gbps=1008, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=450,
        source=_ADA,
    ),
    # -- GeForce Blackwell -------------------------------------------------------------------------
    GpuReference(
        key="rtx-5070", model="GeForce RTX 5070", nvml_names=("NVIDIA GeForce RTX 5070",),
        fp32_tflops=30.9, fp16_tensor_tflops=61.7, bf16_tensor_tflops=61.7,
        memory_gbps=672, vram_gib=12, pcie_generation=5, pcie_lanes=16, board_power_w=250,
        source=_BLACKWELL_SPECS,
    ),
    GpuReference(
        key="rtx-5070-ti", model="GeForce RTX 5070 Ti", nvml_names=("NVIDIA GeForce RTX 5070 Ti",),
        fp32_tflops=43.9, fp16_tensor_tflops=87.9, bf16_tensor_tflops=87.9,
        memory_gbps=896, vram_gib=16, pcie_generation=5, pcie_lanes=16, board_power_w=300,
        source=_BLACKWELL_SPECS,
    ),
    GpuReference(
        key="rtx-5080", model="GeForce RTX 5080", nvml_names=("NVIDIA GeForce RTX 5080",),
        fp32_tflops=56.3, fp16_tensor_tflops=112.6, bf16_tensor_tflops=112.6,
        memory_gbps=960, vram_gib=16, pcie_generation=5, pcie_lanes=16, board_power_w=360,
        source=_BLACKWELL,
    ),
    GpuReference(
        key="rtx-5090", model="GeForce RTX 5090", nvml_names=("NVIDIA GeForce RTX 5090",),
        fp32_tflops=104.8, fp16_tensor_tflops=209.5, bf16_tensor_tflops=209.5,
        memory_gbps=1792, vram_gib=32, pcie_generation=5, pcie_lanes=16, board_power_w=575,
        source=_BLACKWELL,
    ),
    # -- RTX professional, Ampere ------------------------------------------------------------------
    GpuReference(
        key="rtx-a2000", model="RTX A2000 6GB", nvml_names=("NVIDIA RTX A2000",),
        fp32_tflops=8, fp16_tensor_tflops=31.95, bf16_tensor_tflops=31.95,
        memory_gbps=288, vram_gib=6, pcie_generation=4, pcie_lanes=16, board_power_w=70,
        source="NVIDIA RTX A2000 " + _RTX_A,
    ),
    GpuReference(
        key="rtx-a2000-12gb", model="RTX A2000 12GB", nvml_names=("NVIDIA RTX A2000 12GB",),
        fp32_tflops=8, fp16_tensor_tflops=31.95, bf16_tensor_tflops=31.95,
        memory_gbps=288, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=70,
        source="NVIDIA RTX A2000 12GB " + _RTX_A,
    ),
    GpuReference(
        key="rtx-a4000", model="RTX A4000", nvml_names=("NVIDIA RTX A4000",),
        fp32_tflops=19.2, fp16_tensor_tflops=76.7, bf16_tensor_tflops=76.7,
        memory_gbps=448, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=140,
        source="NVIDIA RTX A4000 " + _RTX_A,
    ),
    GpuReference(
        key="rtx-a5000", model="RTX A5000", nvml_names=("NVIDIA RTX A5000",),
        fp32_tflops=27.8, fp16_tensor_tflops=111.1, bf16_tensor_tflops=111.1,
        memory_gbps=768, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=230,
        source="NVIDIA RTX A5000 " + _RTX_A,
    ),
    GpuReference(
        key="rtx-a6000", model="RTX A6000", nvml_names=("NVIDIA RTX A6000",),
        fp32_tflops=38.7, fp16_tensor_tflops=154.85, bf16_tensor_tflops=154.85,
        memory_gbps=768, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source="NVIDIA RTX A6000 " + _RTX_A,
    ),
    # -- RTX professional, Ada ---------------------------------------------------------------------
    GpuReference(
        key="rtx-4000-ada", model="RTX 4000 Ada Generation", nvml_names=("NVIDIA RTX 4000 Ada Generation",),
        fp32_tflops=26.7, fp16_tensor_tflops=106.9, bf16_tensor_tflops=106.9,
        memory_gbps=360, vram_gib=20, pcie_generation=4, pcie_lanes=16, board_power_w=130,
        source=(
            "NVIDIA RTX 4000 Ada Generation datasheet; tensor derived: 192 Tensor Cores × 256 "
            "FLOP/clock (full-rate FP32 accumulate) × 2175 MHz boost"
        ),
    ),
    GpuReference(
        key="rtx-5000-ada", model="RTX 5000 Ada Generation", nvml_names=("NVIDIA RTX 5000 Ada Generation",),
        fp32_tflops=65.3, fp16_tensor_tflops=261.1, bf16_tensor_tflops=261.1,
        memory_gbps=576, vram_gib=32, pcie_generation=4, pcie_lanes=16, board_power_w=250,
        source="NVIDIA RTX 5000 Ada Generation " + _RTX_ADA,
    ),
    GpuReference(
        key="rtx-6000-ada", model="RTX 6000 Ada Generation", nvml_names=("NVIDIA RTX 6000 Ada Generation",),
        fp32_tflops=91.1, fp16_tensor_tflops=364.2, bf16_tensor_tflops=364.2,
        memory_gbps=960, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source="NVIDIA RTX 6000 Ada Generation " + _RTX_ADA + "; the Ada whitepaper gives the same 364.2",
    ),
    # -- Data centre: Ampere -----------------------------------------------------------------------
    GpuReference(
        key="a100-pcie-40gb", model="A100 PCIe 40GB", nvml_names=("NVIDIA A100-PCIE-40GB", "NVIDIA A100 PCIe 40GB",),
        fp32_tflops=19.5, fp16_tensor_tflops=312, bf16_tensor_tflops=312,
        memory_gbps=1555, vram_gib=40, pcie_generation=4, pcie_lanes=16, board_power_w=250,
        source=_A100,
    ),
    GpuReference(
        key="a100-pcie-80gb", model="A100 PCIe 80GB", nvml_names=("NVIDIA A100 80GB PCIe", "NVIDIA A100-PCIE-80GB",),
        fp32_tflops=19.5, fp16_tensor_tflops=312, bf16_tensor_tflops=312,
        memory_gbps=1935, vram_gib=80, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source=_A100,
    ),
    GpuReference(
        key="a100-sxm-40gb", model="A100 SXM4 40GB", nvml_names=("NVIDIA A100-SXM4-40GB",),
        fp32_tflops=19.5, fp16_tensor_tflops=312, bf16_tensor_tflops=312,
        memory_gbps=1555, vram_gib=40, pcie_generation=4, pcie_lanes=16, board_power_w=400,
        source=_A100,
    ),
    GpuReference(
        key="a100-sxm-80gb", model="A100 SXM4 80GB", nvml_names=("NVIDIA A100-SXM4-80GB",),
        fp32_tflops=19.5, fp16_tensor_tflops=312, bf16_tensor_tflops=312,
        memory_gbps=2039, vram_gib=80, pcie_generation=4, pcie_lanes=16, board_power_w=400,
        source=_A100,
    ),
    # -- Data centre: Hopper -----------------------------------------------------------------------
    GpuReference(
        key="h100-pcie", model="H100 PCIe 80GB", nvml_names=("NVIDIA H100 PCIe",),
        fp32_tflops=51, fp16_tensor_tflops=756.5, bf16_tensor_tflops=756.5,
        memory_gbps=2000, vram_gib=80, pcie_generation=5, pcie_lanes=16, board_power_w=350,
        source=_H100,
    ),
    GpuReference(
        key="h100-sxm", model="H100 SXM5 80GB", nvml_names=("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB",),
        fp32_tflops=67, fp16_tensor_tflops=989.4, bf16_tensor_tflops=989.4,
        memory_gbps=3350, vram_gib=80, pcie_generation=5, pcie_lanes=16, board_power_w=700,
        source=_H100 + "; 989.4 as in the NVIDIA H100 Tensor Core GPU Architecture whitepaper",
    ),
    GpuReference(
        key="h100-nvl", model="H100 NVL 94GB", nvml_names=("NVIDIA H100 NVL",),
        fp32_tflops=60, fp16_tensor_tflops=835.5, bf16_tensor_tflops=835.5,
        memory_gbps=3900, vram_gib=94, pcie_generation=5, pcie_lanes=16, board_power_w=400,
        source=_H100,
    ),
    GpuReference(
        key="h200-sxm", model="H200 SXM 141GB", nvml_names=("NVIDIA H200",),
        fp32_tflops=67, fp16_tensor_tflops=989.5, bf16_tensor_tflops=989.5,
        memory_gbps=4800, vram_gib=141, pcie_generation=5, pcie_lanes=16, board_power_w=700,
        source=_H200,
    ),
    GpuReference(
        key="h200-nvl", model="H200 NVL 141GB", nvml_names=("NVIDIA H200 NVL",),
        fp32_tflops=60, fp16_tensor_tflops=835.5, bf16_tensor_tflops=835.5,
        memory_gbps=4800, vram_gib=141, pcie_generation=5, pcie_lanes=16, board_power_w=600,
        source=_H200,
    ),
    # -- Data centre: Ada --------------------------------------------------------------------------
    GpuReference(
        key="l4", model="L4", nvml_names=("NVIDIA L4",),
        fp32_tflops=30.3, fp16_tensor_tflops=121, bf16_tensor_tflops=121,
        memory_gbps=300, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=72,
        source="NVIDIA L4 Tensor Core GPU datasheet; tensor: its with-sparsity figure halved",
    ),
    GpuReference(
        key="l40", model="L40", nvml_names=("NVIDIA L40",),
        fp32_tflops=90.5, fp16_tensor_tflops=181.05, bf16_tensor_tflops=181.05,
        memory_gbps=864, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source="NVIDIA L40 datasheet; tensor: its dense figure (with sparsity 362.1)",
    ),
    GpuReference(
        key="l40s", model="L40S", nvml_names=("NVIDIA L40S",),
        fp32_tflops=91.6, fp16_tensor_tflops=362.05, bf16_tensor_tflops=362.05,
        memory_gbps=864, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source="NVIDIA L40S datasheet; tensor: its dense figure (with sparsity 733)",
    ),
)
# fmt: on
