"""The reference table: NVIDIA's published peak figures for the GPUs SpareCycles expects to meet.

See ``reference`` for the conventions (dense tensor rates with FP32 accumulate, marketed VRAM). Each
entry names the documents or pages its figures were checked against, and marks what no source
confirmed as unverified; where no source gives a dense FP32-accumulate tensor figure, the derivation
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


# What each source note records: the document or page the figures were checked against, then the tensor convention.
# "Derived" tensor figures are Tensor Cores x FLOP per clock per Tensor Core x boost clock, the way NVIDIA's
# whitepapers compute theirs; "unverified" names a figure no stored copy of a source could confirm (these notes
# were checked in one pass against stored copies of public pages, so a page named here may quote a datasheet).
_GEFORCE_TURING = "tensor: FP16 with FP32 accumulate (half the FP16-accumulate rate on GeForce Turing)"
_GEFORCE = "tensor: FP16/BF16 with FP32 accumulate, dense (half the FP16-accumulate rate on GeForce)"
_PRO_DENSE = "tensor: dense FP16/BF16, full-rate FP32 accumulate"
_SPARSE_HALVED = "tensor: the datasheet's with-sparsity FP16/BF16 figure halved"
_FP8_QUARTERED = (
    "tensor: the datasheet's 'Tensor Performance' (FP8 with sparsity) / 4, i.e. dense FP16 with full-rate FP32 "
    "accumulate"
)
_A100 = (
    "NVIDIA A100 datasheet figures (19.5 TFLOPS FP32, 312 TFLOPS dense BF16/FP16 tensor) as tabulated at "
    "glennklockwood.com/garden/processors/A100; bandwidth and TDP per SKU from the A100 spec table at "
    "thundercompute.com/blog/nvidia-a100-specs-full-guide (1,555 / 1,935 / 1,555 / 2,039 GB/s; 250 / 300 / 400 / "
    "400 W); " + _PRO_DENSE
)
_H100_TABLE = (
    "NVIDIA H100 datasheet table (SXM | PCIe: FP32 67 | 51, BF16 1,979* | 1,513* with sparsity, 3,350 | 2,000 GB/s, "
    "700 | 300-350 W) as reproduced at archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html"
)
_H200_PAGE = (
    "NVIDIA H200 product page spec table (nvidia.com/en-us/data-center/h200, transcribed in public repositories): "
    "H200 SXM FP32 67, BF16 1,979 with sparsity, up to 700 W; H200 NVL FP32 60, BF16 1,671 with sparsity, "
    "up to 600 W; both 141 GB, 4.8 TB/s"
)
_L40_TABLE = (
    "NVIDIA L40 / L40S datasheet table as reproduced at mullet.se (product 355414): FP32 90.5 | 91.6, BF16/FP16 "
    "tensor 181.05 | 362.05 dense (362.1 | 733 with sparsity), 864 GB/s, 300 | 350 W, PCIe Gen4 x16"
)
_SVET = (
    "the RTX 40 / 40 SUPER table at svethardware.cz (nvidia-geforce-rtx-4000-super-prichazi...): cores, boost, "
    "FP32, bandwidth, TGP"
)
_SCAN = "the Ampere/Turing spec table at scan.co.uk/tekspek/gpu-graphics/nvidia-geforce-rtx-3060ti"


# One model per block, its figures on two lines, to read against a datasheet; the formatter would spread them.
# fmt: off
REFERENCE_GPUS: tuple[GpuReference, ...] = (
    # -- GeForce Turing: no BF16 -------------------------------------------------------------------
    GpuReference(
        key="rtx-2060", model="GeForce RTX 2060", nvml_names=("NVIDIA GeForce RTX 2060",),
        fp32_tflops=6.45, fp16_tensor_tflops=25.8, bf16_tensor_tflops=None,
        memory_gbps=336, vram_gib=6, pcie_generation=3, pcie_lanes=16, board_power_w=160,
        source=(
            "fudzilla.com RTX 2060 announcement and fpsbench.com (TechPowerUp data): 1,920 cores, 240 Tensor Cores, "
            "1,680 MHz boost, 336 GB/s, 160 W (not in the Turing whitepaper, which predates it); tensor derived: "
            "240 x 64 FLOP/clock x 1,680 MHz; " + _GEFORCE_TURING
        ),
    ),
    GpuReference(
        key="rtx-2060-super", model="GeForce RTX 2060 SUPER", nvml_names=("NVIDIA GeForce RTX 2060 SUPER",),
        fp32_tflops=7.18, fp16_tensor_tflops=28.7, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=175,
        source=(
            "TechPowerUp RTX 2060 SUPER review: 2,176 cores, 272 Tensor Cores, 1,650 MHz boost, 448 GB/s; 175 W per "
            "hardwaredb.net and cputronic.com; tensor derived: 272 x 64 FLOP/clock x 1,650 MHz; " + _GEFORCE_TURING
        ),
    ),
    GpuReference(
        key="rtx-2070", model="GeForce RTX 2070", nvml_names=("NVIDIA GeForce RTX 2070",),
        fp32_tflops=7.46, fp16_tensor_tflops=29.9, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=175,
        source=(
            "botcraftman.ru and pl.gamegpu.com (reference card): 2,304 cores, 288 Tensor Cores, 1,620 MHz boost, "
            "7.465 TFLOPS, 448 GB/s, 175 W; tensor derived: 288 x 64 FLOP/clock x 1,620 MHz (the Turing whitepaper's "
            "Appendix A reference figure, not found in the stored copies); " + _GEFORCE_TURING
        ),
    ),
    GpuReference(
        key="rtx-2070-super", model="GeForce RTX 2070 SUPER", nvml_names=("NVIDIA GeForce RTX 2070 SUPER",),
        fp32_tflops=9.06, fp16_tensor_tflops=36.2, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=215,
        source=(
            _SCAN + ": 2,560 cores, 320 Tensor Cores, 1,770 MHz boost, 9,062 GFLOPS, 448 GB/s; 215 W per the GPU "
            "list at gist.github.com/Fuwn; tensor derived: 320 x 64 FLOP/clock x 1,770 MHz; " + _GEFORCE_TURING
        ),
    ),
    GpuReference(
        key="rtx-2080", model="GeForce RTX 2080", nvml_names=("NVIDIA GeForce RTX 2080",),
        fp32_tflops=10.07, fp16_tensor_tflops=40.3, bf16_tensor_tflops=None,
        memory_gbps=448, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=215,
        source=(
            "cpu-gpu.alldbin.com and en.gamegpu.com (reference card): 2,944 cores, 1,710 MHz boost, 448 GB/s, 215 W; "
            "368 Tensor Cores per firstxw.com; tensor derived: 368 x 64 FLOP/clock x 1,710 MHz (the Turing "
            "whitepaper's Appendix A reference figure, not found in the stored copies); " + _GEFORCE_TURING
        ),
    ),
    GpuReference(
        key="rtx-2080-super", model="GeForce RTX 2080 SUPER", nvml_names=("NVIDIA GeForce RTX 2080 SUPER",),
        fp32_tflops=11.15, fp16_tensor_tflops=44.6, bf16_tensor_tflops=None,
        memory_gbps=496, vram_gib=8, pcie_generation=3, pcie_lanes=16, board_power_w=250,
        source=(
            _SCAN + ": 3,072 cores, 384 Tensor Cores, 1,815 MHz boost, 11,151 GFLOPS, 496 GB/s; 250 W per the GPU "
            "list at gist.github.com/Fuwn; tensor derived: 384 x 64 FLOP/clock x 1,815 MHz; " + _GEFORCE_TURING
        ),
    ),
    GpuReference(
        key="rtx-2080-ti", model="GeForce RTX 2080 Ti", nvml_names=("NVIDIA GeForce RTX 2080 Ti",),
        fp32_tflops=13.45, fp16_tensor_tflops=53.8, bf16_tensor_tflops=None,
        memory_gbps=616, vram_gib=11, pcie_generation=3, pcie_lanes=16, board_power_w=250,
        source=(
            "NVIDIA 'Turing Architecture In-Depth' (developer blog, 2018) Table 1, reference column: 13.4 TFLOPS, "
            "53.8 TFLOPS FP16 tensor with FP32 accumulate (107.6 with FP16 accumulate), 616 GB/s, 250 W; "
            + _GEFORCE_TURING
        ),
    ),
    # -- GeForce Ampere ----------------------------------------------------------------------------
    GpuReference(
        key="rtx-3060", model="GeForce RTX 3060 12GB", nvml_names=("NVIDIA GeForce RTX 3060",),
        fp32_tflops=12.7, fp16_tensor_tflops=25.5, bf16_tensor_tflops=25.5,
        memory_gbps=360, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=170,
        source=(
            "pcpartdb.com and hardwaredb.net (TechPowerUp data): 3,584 cores, 112 Tensor Cores, 1,777 MHz boost, "
            "360 GB/s, 170 W; tensor derived: 112 x 128 FLOP/clock x 1,777 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3060-8gb", model="GeForce RTX 3060 8GB", nvml_names=("NVIDIA GeForce RTX 3060",),
        fp32_tflops=12.7, fp16_tensor_tflops=25.5, bf16_tensor_tflops=25.5,
        memory_gbps=240, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=170,
        source=(
            "fpsbench.com (TechPowerUp data): 3,584 cores, 112 Tensor Cores, 1,777 MHz boost, 12.74 TFLOPS, "
            "128-bit 240 GB/s, 170 W; tensor derived: 112 x 128 FLOP/clock x 1,777 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3060-ti", model="GeForce RTX 3060 Ti", nvml_names=("NVIDIA GeForce RTX 3060 Ti",),
        fp32_tflops=16.2, fp16_tensor_tflops=32.4, bf16_tensor_tflops=32.4,
        memory_gbps=448, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=200,
        source=(
            _SCAN + ": 4,864 cores, 152 Tensor Cores, 1,665 MHz boost, 16,197 GFLOPS, 448 GB/s; 200 W per the RTX 40 "
            "spec table at guru3d.com; tensor derived: 152 x 128 FLOP/clock x 1,665 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3070", model="GeForce RTX 3070", nvml_names=("NVIDIA GeForce RTX 3070",),
        fp32_tflops=20.3, fp16_tensor_tflops=40.6, bf16_tensor_tflops=40.6,
        memory_gbps=448, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=220,
        source=(
            _SCAN + ": 5,888 cores, 184 Tensor Cores, 1,725 MHz boost, 20,314 GFLOPS, 448 GB/s; 220 W per "
            "fudzilla.net; tensor derived: 184 x 128 FLOP/clock x 1,725 MHz (the GA102 whitepaper's figure, not "
            "found in the stored copies); " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3070-ti", model="GeForce RTX 3070 Ti", nvml_names=("NVIDIA GeForce RTX 3070 Ti",),
        fp32_tflops=21.7, fp16_tensor_tflops=43.5, bf16_tensor_tflops=43.5,
        memory_gbps=608, vram_gib=8, pcie_generation=4, pcie_lanes=16, board_power_w=290,
        source=(
            "608 GB/s per a review at praeco-medii-aevi.de; unverified: 6,144 cores, 192 Tensor Cores, 1,770 MHz "
            "boost and 290 W (no stored copy of a source found); tensor derived: 192 x 128 FLOP/clock x 1,770 MHz; "
            + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3080", model="GeForce RTX 3080 10GB", nvml_names=("NVIDIA GeForce RTX 3080",),
        fp32_tflops=29.8, fp16_tensor_tflops=59.5, bf16_tensor_tflops=59.5,
        memory_gbps=760, vram_gib=10, pcie_generation=4, pcie_lanes=16, board_power_w=320,
        source=(
            "fudzilla.net (NVIDIA launch specs): 8,704 cores, 1.71 GHz boost, 29.8 TFLOPS, 320 W; " + _SCAN
            + ": 272 Tensor Cores, 760 GB/s; tensor derived: 272 x 128 FLOP/clock x 1,710 MHz (the GA102 "
            "whitepaper's figure, not found in the stored copies); " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3080-12gb", model="GeForce RTX 3080 12GB", nvml_names=("NVIDIA GeForce RTX 3080",),
        fp32_tflops=30.6, fp16_tensor_tflops=61.3, bf16_tensor_tflops=61.3,
        memory_gbps=912, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=(
            "sysrqmts.com (TechPowerUp data): 8,960 cores, 280 Tensor Cores, 1,710 MHz boost, 30.64 TFLOPS, "
            "912 GB/s, 350 W; tensor derived: 280 x 128 FLOP/clock x 1,710 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3080-ti", model="GeForce RTX 3080 Ti", nvml_names=("NVIDIA GeForce RTX 3080 Ti",),
        fp32_tflops=34.1, fp16_tensor_tflops=68.2, bf16_tensor_tflops=68.2,
        memory_gbps=912, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=(
            "10,240 cores and 912 GB/s per wccftech.com; unverified: 320 Tensor Cores, 1,665 MHz boost and 350 W (no "
            "stored copy of a source found); tensor derived: 320 x 128 FLOP/clock x 1,665 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3090", model="GeForce RTX 3090", nvml_names=("NVIDIA GeForce RTX 3090",),
        fp32_tflops=35.6, fp16_tensor_tflops=71, bf16_tensor_tflops=71,
        memory_gbps=936, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=(
            "NVIDIA Ampere GA102 whitepaper figures (71 TFLOPS FP16 tensor with FP32 accumulate, 35.6 TFLOPS, "
            "1,695 MHz, 936 GB/s) as transcribed in public repositories; 350 W per fudzilla.net; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-3090-ti", model="GeForce RTX 3090 Ti", nvml_names=("NVIDIA GeForce RTX 3090 Ti",),
        fp32_tflops=40, fp16_tensor_tflops=80, bf16_tensor_tflops=80,
        memory_gbps=1008, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=450,
        source=(
            "tweaktown.com (NVIDIA specs): 10,752 cores, 1,860 MHz boost, 40 TFLOPS, 1,008 GB/s, 450 W; tensor "
            "derived: 336 x 128 FLOP/clock x 1,860 MHz; " + _GEFORCE
        ),
    ),
    # -- GeForce Ada (the 4060 family has an x8 link) ----------------------------------------------
    GpuReference(
        key="rtx-4060", model="GeForce RTX 4060", nvml_names=("NVIDIA GeForce RTX 4060",),
        fp32_tflops=15.1, fp16_tensor_tflops=30.2, bf16_tensor_tflops=30.2,
        memory_gbps=272, vram_gib=8, pcie_generation=4, pcie_lanes=8, board_power_w=115,
        source=(
            "fpsbench.com (TechPowerUp data): 3,072 cores, 96 Tensor Cores, 2,460 MHz boost, 15.11 TFLOPS, "
            "272 GB/s, 115 W; PCIe 4.0 x8 per guru3d.com; tensor derived: 96 x 128 FLOP/clock x 2,460 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4060-ti", model="GeForce RTX 4060 Ti 8GB", nvml_names=("NVIDIA GeForce RTX 4060 Ti",),
        fp32_tflops=22.1, fp16_tensor_tflops=44.1, bf16_tensor_tflops=44.1,
        memory_gbps=288, vram_gib=8, pcie_generation=4, pcie_lanes=8, board_power_w=160,
        source=(
            "guru3d.com RTX 40 spec table: 4,352 cores, 2,535 MHz boost, 22 TFLOPS, 288 GB/s, 160 W, PCIe 4.0 x8; "
            "tensor derived: 136 x 128 FLOP/clock x 2,535 MHz (NVIDIA's 353 AI TFLOPS, FP8 sparse with FP16 "
            "accumulate, / 8 agrees); " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4060-ti-16gb", model="GeForce RTX 4060 Ti 16GB", nvml_names=("NVIDIA GeForce RTX 4060 Ti",),
        fp32_tflops=22.1, fp16_tensor_tflops=44.1, bf16_tensor_tflops=44.1,
        memory_gbps=288, vram_gib=16, pcie_generation=4, pcie_lanes=8, board_power_w=165,
        source=(
            "cpu-gpu.alldbin.com (TechPowerUp data): 4,352 cores, 2,535 MHz boost, 288 GB/s, 165 W, PCIe 4.0 x8; "
            "tensor derived: 136 x 128 FLOP/clock x 2,535 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4070", model="GeForce RTX 4070", nvml_names=("NVIDIA GeForce RTX 4070",),
        fp32_tflops=29.1, fp16_tensor_tflops=58.3, bf16_tensor_tflops=58.3,
        memory_gbps=504, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=200,
        source=(
            _SVET + " (5,888, 2,475 MHz, 29.15 TFLOPS, 504 GB/s, 200 W); 184 Tensor Cores per thefpsreview.com; "
            "tensor derived: 184 x 128 FLOP/clock x 2,475 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4070-super", model="GeForce RTX 4070 SUPER", nvml_names=("NVIDIA GeForce RTX 4070 SUPER",),
        fp32_tflops=35.5, fp16_tensor_tflops=71, bf16_tensor_tflops=71,
        memory_gbps=504, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=220,
        source=(
            _SVET + " (7,168, 2,475 MHz, 35.49 TFLOPS, 504 GB/s, 220 W); 224 Tensor Cores per oreateai.com; tensor "
            "derived: 224 x 128 FLOP/clock x 2,475 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4070-ti", model="GeForce RTX 4070 Ti", nvml_names=("NVIDIA GeForce RTX 4070 Ti",),
        fp32_tflops=40.1, fp16_tensor_tflops=80.2, bf16_tensor_tflops=80.2,
        memory_gbps=504, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=285,
        source=(
            _SVET + " (7,680, 2,610 MHz, 40.09 TFLOPS, 504 GB/s, 285 W); 240 Tensor Cores per praeco-medii-aevi.de; "
            "tensor derived: 240 x 128 FLOP/clock x 2,610 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4070-ti-super", model="GeForce RTX 4070 Ti SUPER", nvml_names=("NVIDIA GeForce RTX 4070 Ti SUPER",),
        fp32_tflops=44.1, fp16_tensor_tflops=88.2, bf16_tensor_tflops=88.2,
        memory_gbps=672, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=285,
        source=(
            _SVET + " (8,448, 2,610 MHz, 44.1 TFLOPS, 672 GB/s, 285 W); tensor derived: 264 x 128 FLOP/clock x "
            "2,610 MHz (66 SMs x 4 Tensor Cores); " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4080", model="GeForce RTX 4080", nvml_names=("NVIDIA GeForce RTX 4080",),
        fp32_tflops=48.7, fp16_tensor_tflops=97.5, bf16_tensor_tflops=97.5,
        memory_gbps=716.8, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=320,
        source=(
            _SVET + " (9,728, 2,505 MHz, 48.74 TFLOPS, 717 GB/s, 320 W); tensor derived: 304 x 128 FLOP/clock x "
            "2,505 MHz (the Ada whitepaper's 97.5 and 716.8 GB/s, not found in the stored copies); " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4080-super", model="GeForce RTX 4080 SUPER", nvml_names=("NVIDIA GeForce RTX 4080 SUPER",),
        fp32_tflops=52.2, fp16_tensor_tflops=104.4, bf16_tensor_tflops=104.4,
        memory_gbps=736, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=320,
        source=(
            _SVET + " (10,240, 2,550 MHz, 52.22 TFLOPS, 736 GB/s, 320 W); tensor derived: 320 x 128 FLOP/clock x "
            "2,550 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-4090", model="GeForce RTX 4090", nvml_names=("NVIDIA GeForce RTX 4090",),
        fp32_tflops=82.6, fp16_tensor_tflops=165.2, bf16_tensor_tflops=165.2,
        memory_gbps=1008, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=450,
        source=(
            "NVIDIA RTX Blackwell GPU Architecture whitepaper V1.1, Appendix A (its RTX 4090 column: 165.2 dense BF16 "
            "with FP32 accumulate), as transcribed in a public repository; " + _SVET + " (16,384, 2,520 MHz, "
            "82.58 TFLOPS, 1,008 GB/s, 450 W); " + _GEFORCE
        ),
    ),
    # -- GeForce Blackwell -------------------------------------------------------------------------
    GpuReference(
        key="rtx-5070", model="GeForce RTX 5070", nvml_names=("NVIDIA GeForce RTX 5070",),
        fp32_tflops=30.9, fp16_tensor_tflops=61.7, bf16_tensor_tflops=61.7,
        memory_gbps=672, vram_gib=12, pcie_generation=5, pcie_lanes=16, board_power_w=250,
        source=(
            "fpsbench.com (TechPowerUp data): 6,144 cores, 192 Tensor Cores, 2,512 MHz boost, 30.87 TFLOPS, "
            "672 GB/s, 250 W; tensor derived: 192 x 128 FLOP/clock x 2,512 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-5070-ti", model="GeForce RTX 5070 Ti", nvml_names=("NVIDIA GeForce RTX 5070 Ti",),
        fp32_tflops=43.9, fp16_tensor_tflops=87.9, bf16_tensor_tflops=87.9,
        memory_gbps=896, vram_gib=16, pcie_generation=5, pcie_lanes=16, board_power_w=300,
        source=(
            "topcpu.net (NVIDIA's CES 2025 specs): 8,960 cores, 2.45 GHz boost, 896 GB/s, 300 W, PCIe 5.0 x16; "
            "unverified: the exact 2,452 MHz boost (no stored copy gives more than 2.45 GHz); tensor derived: "
            "280 x 128 FLOP/clock x 2,452 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-5080", model="GeForce RTX 5080", nvml_names=("NVIDIA GeForce RTX 5080",),
        fp32_tflops=56.3, fp16_tensor_tflops=112.6, bf16_tensor_tflops=112.6,
        memory_gbps=960, vram_gib=16, pcie_generation=5, pcie_lanes=16, board_power_w=360,
        source=(
            "fpsbench.com (TechPowerUp data): 10,752 cores, 336 Tensor Cores, 2,617 MHz boost, 56.28 TFLOPS, "
            "960 GB/s, 360 W (360 W TGP also per notebookcheck.net); tensor derived: 336 x 128 FLOP/clock x "
            "2,617 MHz; " + _GEFORCE
        ),
    ),
    GpuReference(
        key="rtx-5090", model="GeForce RTX 5090", nvml_names=("NVIDIA GeForce RTX 5090",),
        fp32_tflops=104.8, fp16_tensor_tflops=209.5, bf16_tensor_tflops=209.5,
        memory_gbps=1792, vram_gib=32, pcie_generation=5, pcie_lanes=16, board_power_w=575,
        source=(
            "NVIDIA RTX Blackwell GPU Architecture whitepaper V1.1, Appendix A (GB202: 209.5 dense BF16/FP16 with "
            "FP32 accumulate), as transcribed in a public repository; spheron.network spec table: 21,760 cores, "
            "1,792 GB/s, 575 W, PCIe Gen 5 x16; 2,407 MHz boost per pcspecchart.com; " + _GEFORCE
        ),
    ),
    # -- RTX professional, Ampere ------------------------------------------------------------------
    GpuReference(
        key="rtx-a2000", model="RTX A2000 6GB", nvml_names=("NVIDIA RTX A2000",),
        fp32_tflops=8, fp16_tensor_tflops=31.95, bf16_tensor_tflops=31.95,
        memory_gbps=288, vram_gib=6, pcie_generation=4, pcie_lanes=16, board_power_w=70,
        source=(
            "tomshardware.fr (NVIDIA launch specs): 3,328 cores, 8.0 TFLOPS, 288 GB/s, 70 W, PCIe 4.0 x16; datasheet "
            "Tensor Performance 63.9 TFLOPS (with sparsity) as quoted in public repositories; " + _SPARSE_HALVED
            + " (professional card: full-rate FP32 accumulate)"
        ),
    ),
    GpuReference(
        key="rtx-a2000-12gb", model="RTX A2000 12GB", nvml_names=("NVIDIA RTX A2000 12GB",),
        fp32_tflops=8, fp16_tensor_tflops=31.95, bf16_tensor_tflops=31.95,
        memory_gbps=288, vram_gib=12, pcie_generation=4, pcie_lanes=16, board_power_w=70,
        source=(
            "cputronic.com and sysrqmts.com (TechPowerUp data): 12 GB, 3,328 cores, 1,200 MHz boost, 7.99 TFLOPS, "
            "288 GB/s, 70 W; datasheet Tensor Performance 63.9 TFLOPS (with sparsity) as quoted in public "
            "repositories; " + _SPARSE_HALVED + " (professional card: full-rate FP32 accumulate)"
        ),
    ),
    GpuReference(
        key="rtx-a4000", model="RTX A4000", nvml_names=("NVIDIA RTX A4000",),
        fp32_tflops=19.2, fp16_tensor_tflops=76.7, bf16_tensor_tflops=76.7,
        memory_gbps=448, vram_gib=16, pcie_generation=4, pcie_lanes=16, board_power_w=140,
        source=(
            "NVIDIA RTX A4000 datasheet table as reproduced at ecer.com: 19.2 TFLOPS, Tensor Performance 153.4 TFLOPS "
            "(with sparsity), 448 GB/s, 140 W, PCIe 4.0 x16; " + _SPARSE_HALVED
            + " (professional card: full-rate FP32 accumulate)"
        ),
    ),
    GpuReference(
        key="rtx-a5000", model="RTX A5000", nvml_names=("NVIDIA RTX A5000",),
        fp32_tflops=27.8, fp16_tensor_tflops=111.1, bf16_tensor_tflops=111.1,
        memory_gbps=768, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=230,
        source=(
            "NVIDIA RTX A5000 datasheet table as reproduced in public repositories: 27.8 TFLOPS, Tensor Performance "
            "222.2 TFLOPS (with sparsity), 768 GB/s, 230 W, PCIe 4.0 x16; " + _SPARSE_HALVED
            + " (professional card: full-rate FP32 accumulate)"
        ),
    ),
    GpuReference(
        key="rtx-a6000", model="RTX A6000", nvml_names=("NVIDIA RTX A6000",),
        fp32_tflops=38.7, fp16_tensor_tflops=154.85, bf16_tensor_tflops=154.85,
        memory_gbps=768, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source=(
            "llmperf.net (citing PNY and Microway): 154.8 TFLOPS dense FP16/BF16 (309.7 with sparsity), 768 GB/s, "
            "300 W, PCIe 4.0 x16; 38.71 TFLOPS per sysrqmts.com; " + _SPARSE_HALVED
            + " (professional card: full-rate FP32 accumulate)"
        ),
    ),
    # -- RTX professional, Ada ---------------------------------------------------------------------
    GpuReference(
        key="rtx-4000-ada", model="RTX 4000 Ada Generation", nvml_names=("NVIDIA RTX 4000 Ada Generation",),
        fp32_tflops=26.7, fp16_tensor_tflops=81.9, bf16_tensor_tflops=81.9,
        memory_gbps=360, vram_gib=20, pcie_generation=4, pcie_lanes=16, board_power_w=130,
        source=(
            "NVIDIA RTX 4000 Ada Generation datasheet: 26.7 TFLOPS, Tensor Performance 327.6 TFLOPS, 360 GB/s, as "
            "quoted in two public repositories (the datasheet's own table is not in the stored copy); 130 W per "
            "huggingface.co/hardware/rtx-4000-ada; " + _FP8_QUARTERED + ". 192 Tensor Cores x 256 FLOP/clock x "
            "2,175 MHz boost would give 106.9: the datasheet's tensor figure implies about 1.67 GHz"
        ),
    ),
    GpuReference(
        key="rtx-5000-ada", model="RTX 5000 Ada Generation", nvml_names=("NVIDIA RTX 5000 Ada Generation",),
        fp32_tflops=65.3, fp16_tensor_tflops=261.1, bf16_tensor_tflops=261.1,
        memory_gbps=576, vram_gib=32, pcie_generation=4, pcie_lanes=16, board_power_w=250,
        source=(
            "NVIDIA RTX 5000 Ada Generation datasheet Tensor Performance 1,044.4 TFLOPS (FP8 with sparsity), as quoted "
            "in public repositories; 65.28 TFLOPS and 250 W per hmc-tech.com (400 x 256 FLOP/clock x 2,550 MHz = "
            "261.1 agrees); unverified: 576 GB/s and 32 GB (no stored copy of a source found); " + _FP8_QUARTERED
        ),
    ),
    GpuReference(
        key="rtx-6000-ada", model="RTX 6000 Ada Generation", nvml_names=("NVIDIA RTX 6000 Ada Generation",),
        fp32_tflops=91.1, fp16_tensor_tflops=364.2, bf16_tensor_tflops=364.2,
        memory_gbps=960, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source=(
            "NVIDIA RTX 6000 Ada Generation datasheet Tensor Performance 1,457.0 TFLOPS (FP8 with sparsity), as quoted "
            "in public repositories; 91.1 TFLOPS, 960 GB/s, 300 W per grafikkarten.com and yottalabs.ai (568 x 256 "
            "FLOP/clock x 2,505 MHz = 364.2, the Ada whitepaper's figure, agrees); " + _FP8_QUARTERED
        ),
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
        source=(
            _H100_TABLE + "; 756 dense in the H100 Tensor Core GPU Architecture whitepaper (Table 3, 350 W TDP), as "
            "transcribed in a public repository; " + _SPARSE_HALVED + " (756.5)"
        ),
    ),
    GpuReference(
        key="h100-sxm", model="H100 SXM5 80GB", nvml_names=("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB",),
        fp32_tflops=67, fp16_tensor_tflops=989.4, bf16_tensor_tflops=989.4,
        memory_gbps=3350, vram_gib=80, pcie_generation=5, pcie_lanes=16, board_power_w=700,
        source=(
            _H100_TABLE + "; 989.4 dense BF16 with FP32 accumulate in the H100 Tensor Core GPU Architecture "
            "whitepaper (Table 3), as transcribed in a public repository; " + _PRO_DENSE
        ),
    ),
    GpuReference(
        key="h100-nvl", model="H100 NVL 94GB", nvml_names=("NVIDIA H100 NVL",),
        fp32_tflops=60, fp16_tensor_tflops=835.5, bf16_tensor_tflops=835.5,
        memory_gbps=3900, vram_gib=94, pcie_generation=5, pcie_lanes=16, board_power_w=400,
        source=(
            "NVIDIA H100 product page (nvidia.com/en-us/data-center/h100: 94 GB, 3.9 TB/s, BF16 1,671 TFLOPS with "
            "sparsity) and the PNY H100 NVL datasheet (FP32 60 TFLOPS), both as quoted in public repositories; "
            "350-400 W per gpu.blog/gpus/nvidia-h100-nvl; " + _SPARSE_HALVED
        ),
    ),
    GpuReference(
        key="h200-sxm", model="H200 SXM 141GB", nvml_names=("NVIDIA H200",),
        fp32_tflops=67, fp16_tensor_tflops=989.5, bf16_tensor_tflops=989.5,
        memory_gbps=4800, vram_gib=141, pcie_generation=5, pcie_lanes=16, board_power_w=700,
        source=_H200_PAGE + "; " + _SPARSE_HALVED,
    ),
    GpuReference(
        key="h200-nvl", model="H200 NVL 141GB", nvml_names=("NVIDIA H200 NVL",),
        fp32_tflops=60, fp16_tensor_tflops=835.5, bf16_tensor_tflops=835.5,
        memory_gbps=4800, vram_gib=141, pcie_generation=5, pcie_lanes=16, board_power_w=600,
        source=_H200_PAGE + "; " + _SPARSE_HALVED,
    ),
    # -- Data centre: Ada --------------------------------------------------------------------------
    GpuReference(
        key="l4", model="L4", nvml_names=("NVIDIA L4",),
        fp32_tflops=30.3, fp16_tensor_tflops=121, bf16_tensor_tflops=121,
        memory_gbps=300, vram_gib=24, pcie_generation=4, pcie_lanes=16, board_power_w=72,
        source=(
            "NVIDIA L4 datasheet figures as summarised at grokipedia.com (NVIDIA L4 vs L40S): FP16 tensor 242 TFLOPS "
            "with sparsity, 24 GB, 300 GB/s, 72 W; 30.29 TFLOPS and PCIe 4.0 x16 per fpsbench.com (TechPowerUp "
            "data); " + _SPARSE_HALVED
        ),
    ),
    GpuReference(
        key="l40", model="L40", nvml_names=("NVIDIA L40",),
        fp32_tflops=90.5, fp16_tensor_tflops=181.05, bf16_tensor_tflops=181.05,
        memory_gbps=864, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=300,
        source=(
            _L40_TABLE + "; tensor: the datasheet's dense figure, which is half the L40S's: the L40 runs FP32 "
            "accumulate at half rate by its datasheet"
        ),
    ),
    GpuReference(
        key="l40s", model="L40S", nvml_names=("NVIDIA L40S",),
        fp32_tflops=91.6, fp16_tensor_tflops=362.05, bf16_tensor_tflops=362.05,
        memory_gbps=864, vram_gib=48, pcie_generation=4, pcie_lanes=16, board_power_w=350,
        source=_L40_TABLE + "; tensor: the datasheet's dense figure",
    ),
)
# fmt: on
