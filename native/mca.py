"""Predict the tuned kernel's inner loop on cores this machine is not: llvm-mca against the op-mix probe.

Compiles ``src/simd_<isa>.cpp`` and ``src/opmix_<isa>.cpp`` to assembly with the flags
CMakeLists.txt gives them, takes the kernel's inner loop (the innermost loop with the most fused
multiply-adds among the functions that run a plain step's tile for that dimension) and the
probe's loop, and prints llvm-mca's cycles per pair-vector for each CPU model,
kernel against probe. The probe's loop is the op-mix ceiling the bench measures, so the ratio is
what the model predicts the kernel reaches; it sees only the inner loop, not the per-row-block
work around it (docs/results/2026-12-07-zen3-avx2.md measures that on a Zen 3). Needs g++ and
llvm-mca (Debian: ``apt-get install llvm-19``; llvm-mca 14's znver3 model counts a 256-bit FMA
twice). ``python native/mca.py --isa avx2 --dims 2 3``.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPUS = {"avx2": ("znver3", "znver4", "znver5", "skylake", "alderlake", "sapphirerapids", "graniterapids"),
        "avx512": ("znver4", "znver5", "skylake-avx512", "icelake-server", "sapphirerapids", "graniterapids")}
FMA = re.compile(r"\tv?f(n?m(add|sub))")
MAX_FUSED_DIM = int(re.search(r"kMaxFusedDim = (\d+);", (HERE / "src" / "simd.hpp").read_text()).group(1))
ITERATIONS = 500


def flags(source):
    """The flags CMakeLists.txt compiles ``source`` (src/<name>.cpp) with: its C++ standard,
    OpenMP, the module's first compile options (-O3 ...) and the file's own (-m...)."""
    text = (HERE / "CMakeLists.txt").read_text()
    standard = re.search(r"set\(CMAKE_CXX_STANDARD (\d+)\)", text).group(1)
    common = re.search(r"target_compile_options\(_native PRIVATE ([^)]*)\)", text).group(1).split()
    properties = r'set_source_files_properties\(([^)]*?)PROPERTIES\s+COMPILE_OPTIONS\s+"([^"]*)"'
    for files, options in re.findall(properties, text):
        if f"src/{source}" in files.split():
            return [f"-std=c++{standard}", "-fopenmp", *common, *options.split(";")]
    raise ValueError(f"CMakeLists.txt sets no COMPILE_OPTIONS on src/{source}")


def assembly(source, compiler):
    """The assembly of src/<source> as the extension compiles it."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.s"
        subprocess.run([compiler, *flags(source), f"-I{HERE / 'src'}", "-S", "-o", str(out),
                        str(HERE / "src" / source)], check=True)
        return out.read_text().splitlines()


def loops(lines):
    """(function, first line, last line) of every loop: a label, and a backward branch to it in
    the same function."""
    function, labels = None, {}
    for index, line in enumerate(lines):
        if re.match(r"^_Z\S+:$", line):
            function, labels = line[:-1], {}
        elif match := re.match(r"^(\.L\d+):$", line):
            labels[match.group(1)] = index
        elif (match := re.match(r"\s+j\w+\s+(\.L\d+)$", line)) and match.group(1) in labels:
            yield function, labels[match.group(1)], index


def instructions(lines, first, last):
    """The instructions of lines first+1 .. last (no labels, no directives)."""
    return [text for text in lines[first + 1:last + 1] if text.startswith("\t") and not text.startswith("\t.")]


def fmas(body):
    """How many fused multiply-adds (and -subtracts) ``body`` holds."""
    return sum(bool(FMA.match(text)) for text in body)


def hottest(lines, names):
    """The innermost loop (no other loop inside it) with the most FMAs, in the functions whose
    mangled names contain one of ``names``."""
    found = [(first, last) for function, first, last in loops(lines)
             if function and any(name in function for name in names)]
    innermost = [(first, last) for first, last in found
                 if not any(first <= a and b <= last and (a, b) != (first, last) for a, b in found)]
    if not innermost:
        raise ValueError(f"no loop in a function named like {names}")
    return max((instructions(lines, *span) for span in innermost), key=fmas)


def cycles(body, cpu, llvm_mca):
    """llvm-mca's cycles per iteration of ``body`` on ``cpu``."""
    run = subprocess.run([llvm_mca, f"-mcpu={cpu}", f"-iterations={ITERATIONS}"], input="\n".join(body),
                         capture_output=True, text=True, check=True)
    return int(re.search(r"Total Cycles:\s+(\d+)", run.stdout).group(1)) / ITERATIONS


def pair_vectors(body, dim):
    """Pair-vectors per iteration of a loop: its FMAs over the 3 dim of one pair-vector (c, the row
    sums and the column sums: dim multiply-adds each)."""
    return fmas(body) / (3 * dim)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", choices=sorted(CPUS), default="avx2")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3], choices=range(1, MAX_FUSED_DIM + 1),
                        help=f"dimensions (1-{MAX_FUSED_DIM}: those the kernel keeps in registers)")
    parser.add_argument("--cpus", nargs="+", default=None, help="llvm-mca -mcpu names (default: per ISA)")
    parser.add_argument("--compiler", default="g++")
    parser.add_argument("--llvm-mca", default=shutil.which("llvm-mca-19") or shutil.which("llvm-mca"))
    args = parser.parse_args()
    if not args.llvm_mca:
        sys.exit("mca.py: llvm-mca not found (apt-get install llvm-19)")
    kernel, probe = assembly(f"simd_{args.isa}.cpp", args.compiler), assembly(f"opmix_{args.isa}.cpp", args.compiler)
    print(f"llvm-mca cycles per pair-vector, {args.isa}, kernel inner loop / op-mix probe (ratio: the "
          f"fraction of the ceiling the model predicts)")
    for dim in args.dims:
        loop = hottest(kernel, (f"tile_fixedIfLi{dim}ELb0ELb0E", f"run_tileIfLi{dim}ELb0E"))
        bound = hottest(probe, (f"runILi{dim}ELb1E",))
        for cpu in args.cpus or CPUS[args.isa]:
            try:
                k = cycles(loop, cpu, args.llvm_mca) / pair_vectors(loop, dim)
                p = cycles(bound, cpu, args.llvm_mca) / pair_vectors(bound, dim)
            except subprocess.CalledProcessError as exc:
                sys.exit(f"mca.py: llvm-mca -mcpu={cpu} failed: {(exc.stderr or '').strip().partition(chr(10))[0]}")
            print(f"dim {dim}  {cpu:16s} {k:6.2f} / {p:6.2f}  ({p / k:.2f})")


if __name__ == "__main__":
    main()
