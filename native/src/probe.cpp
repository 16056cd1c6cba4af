// Micro-benchmarks behind `gradi machine`, the ceilings every report compares against:
//  - the clock, from a chain of dependent 64-bit integer multiplies (3 cycles each on every Intel
//    Core and AMD Zen core; no renamer folds them, as recent Intel cores fold chains of
//    add-immediates), cross-checked by a chain of dependent FMAs (4 or 5 cycles each);
//  - vector fused multiply-add throughput on one core for each instruction set the tuned kernel is
//    built for (simd.hpp's Isa): independent chains of FMAs, enough to cover latency x throughput
//    (4 cycles x 2 pipes = 8 on current cores) with room to spare, within the register file;
//  - the kernels' own op mix run in registers (opmix_kernel.hpp), for each instruction set;
//  - both of those also on several threads at once (together): what the cores deliver when all
//    of them work, which is less than the cores times one where two of them share a core's
//    vector units (SMT siblings behind a VM's vCPUs) or a power budget;
//  - memory read bandwidth: a streaming sum over a buffer far larger than the last-level cache,
//    and over a range of working sets, whose knee is the cache this process really has;
//  - the core-to-core round trip: two threads hand a cache line back and forth, which is what a
//    parallel kernel pays each time one thread hands data to another.
// Each probe returns the seconds its loop took; gradi/bench/probes.py sizes the work, repeats it
// and keeps the best. The work is always consumed (an asm barrier or a volatile store), so the
// compiler cannot drop or fold it.
#include "probe.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "isa_names.hpp"
#include "opmix.hpp"
#include "simd.hpp"
#include "team.hpp"

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#endif

#ifdef GRADI_X86_DISPATCH
#include <immintrin.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace gradi {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The compiler must have computed everything stored at p by here: call it before the clock stops,
// or a loop with no side effects could move past the clock read.
inline void escape(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

template <class T>
void consume(const T& value) {
  volatile unsigned char sink = 0;
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(&value);
  for (std::size_t k = 0; k < sizeof(T); ++k) sink = sink + bytes[k];
}

#if defined(__x86_64__)
constexpr bool kHaveClockChain = true;
#else
constexpr bool kHaveClockChain = false;  // no chain whose latency is known on every core of the architecture
#endif

// Seconds for `links` (a multiple of 16) links of a dependent chain from `x`, `step(x)` making
// 16 of them.
template <class T, class Step>
double time_chain(long long links, T x, Step step) {
  const auto start = Clock::now();
  for (long long done = 0; done < links; done += 16) step(x);
  const double seconds = seconds_since(start);
  consume(x);
  return seconds;
}

#define GRADI_X4(insn) insn "\n\t" insn "\n\t" insn "\n\t" insn "\n\t"
#define GRADI_X16(insn) GRADI_X4(insn) GRADI_X4(insn) GRADI_X4(insn) GRADI_X4(insn)

// Seconds for a chain of `links` (a multiple of 16) dependent 64-bit integer multiplies: the clock.
double mul_chain(long long links) {
  const std::uint64_t m = 0x9E3779B97F4A7C15ull;
  return time_chain(links, std::uint64_t{1}, [&](std::uint64_t& x) {
#if defined(__x86_64__)
    asm volatile(GRADI_X16("imul %1, %0") : "+r"(x) : "r"(m));
#endif
  });
}

// Seconds for a chain of `links` (a multiple of 16) dependent float32 FMAs, where the CPU has FMA.
double fma_chain(long long links) {
  const float m = 1.0f, c = 0.0f;
  return time_chain(links, 1.0f, [&](float& x) {
#if defined(__x86_64__)
    asm volatile(GRADI_X16("vfmadd231ss %1, %2, %0") : "+x"(x) : "x"(m), "x"(c));
#endif
  });
}

// Baseline: 16-byte vectors of the target's baseline (SSE2 on x86-64: a multiply and an add,
// which is what the baseline kernel runs; a true FMA where the baseline has one, e.g. ARM NEON).
typedef float Baseline __attribute__((vector_size(16)));

std::pair<long long, double> fma_baseline(long long rounds) {
  constexpr int kChains = 12;  // of 16 xmm registers
  const Baseline zero = {};
  const Baseline m = zero + 0.999999f, c = zero + 1e-6f;
  Baseline acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = zero + 1.0f;
  const auto begin = Clock::now();
  for (long long r = 0; r < rounds; ++r) {
#pragma GCC unroll 32
    for (int k = 0; k < kChains; ++k) acc[k] = acc[k] * m + c;
  }
  escape(acc);
  const double seconds = seconds_since(begin);
  Baseline sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = sum + acc[k];
  consume(sum);
  return {rounds * kChains, seconds};
}

#ifdef GRADI_X86_DISPATCH
__attribute__((target("avx2,fma"))) std::pair<long long, double> fma_avx2(long long rounds) {
  constexpr int kChains = 12;  // of 16 ymm registers
  __m256 acc[kChains];
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_ps(1.0f);
  const auto begin = Clock::now();
  for (long long r = 0; r < rounds; ++r) {
#pragma GCC unroll 32
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  }
  escape(acc);
  const double seconds = seconds_since(begin);
  __m256 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm256_add_ps(sum, acc[k]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  consume(lanes);
  return {rounds * kChains, seconds};
}

__attribute__((target("avx512f"))) std::pair<long long, double> fma_avx512(long long rounds) {
  constexpr int kChains = 24;  // of 32 zmm registers
  __m512 acc[kChains];
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(1.0f);
  const auto begin = Clock::now();
  for (long long r = 0; r < rounds; ++r) {
#pragma GCC unroll 32
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  }
  escape(acc);
  const double seconds = seconds_since(begin);
  __m512 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm512_add_ps(sum, acc[k]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  consume(lanes);
  return {rounds * kChains, seconds};
}
#endif

// Vector width of each instruction set, as its tuned kernel uses it (GRADI_VECTOR_BYTES).
int vector_bytes(Isa isa) {
  switch (isa) {
    case Isa::avx512: return 64;
    case Isa::avx2: return 32;
    default: return 16;
  }
}

std::pair<long long, double> fma(Isa isa, long long rounds) {
  switch (isa) {
#ifdef GRADI_X86_DISPATCH
    case Isa::avx512: return fma_avx512(rounds);
    case Isa::avx2: return fma_avx2(rounds);
#endif
    default: return fma_baseline(rounds);
  }
}

// (pair-vectors, seconds) of `rounds` rounds of the op mix of one scheme in `dim` dimensions,
// with the vectors of `isa` (opmix_kernel.hpp). The loop runs in another translation unit, so
// the clock reads cannot move into it.
std::pair<long long, double> opmix(Isa isa, int dim, bool symmetric, long long rounds) {
  const auto begin = Clock::now();
  long long pair_vectors;
  switch (isa) {
#ifdef GRADI_X86_DISPATCH
    case Isa::avx512: pair_vectors = opmix_avx512(dim, symmetric, rounds); break;
    case Isa::avx2: pair_vectors = opmix_avx2(dim, symmetric, rounds); break;
#endif
    default: pair_vectors = opmix_baseline(dim, symmetric, rounds);
  }
  return {pair_vectors, seconds_since(begin)};
}

// (units, seconds) of work() run on `threads` threads at once: plain threads, as for handoff (an
// OpenMP team keeps spinning after its region, on the cores the next probe needs). Each thread
// starts its work once all have started; the seconds run from the first start to the last end,
// so a thread the OS kept waiting lowers the rate instead of being left out of it. On one
// thread, work() as it times itself.
template <class Work>
std::pair<long long, double> together(int threads, Work work) {
  if (threads == 1) return work();
  std::atomic<int> ready{0};
  std::vector<long long> units(threads);
  std::vector<Clock::time_point> starts(threads), ends(threads);
  auto run = [&](int k) {
    ready.fetch_add(1);
    while (ready.load() < threads) spin_pause();
    starts[k] = Clock::now();
    units[k] = work().first;
    ends[k] = Clock::now();
  };
  std::vector<std::thread> others;
  try {
    for (int k = 1; k < threads; ++k) others.emplace_back(run, k);
  } catch (...) {  // no thread to be had: release those started (ready passes threads) and give up
    ready.fetch_add(threads);
    for (std::thread& other : others) other.join();
    throw;
  }
  run(0);
  for (std::thread& other : others) other.join();
  long long total = 0;
  for (long long count : units) total += count;
  const auto first = *std::min_element(starts.begin(), starts.end());
  const auto last = *std::max_element(ends.begin(), ends.end());
  return {total, std::chrono::duration<double>(last - first).count()};
}

// Two 64-bit words: the baseline vector every x86-64 and ARM core has.
typedef std::uint64_t Words __attribute__((vector_size(16)));

struct Free {
  void operator()(void* p) const { std::free(p); }
};

// A buffer of at least `bytes`, in whole 2 MiB pages, 2 MiB-aligned and offered huge pages, as
// the tuned kernel's D^2 is, so the TLB does not limit a read; each of `threads` threads first
// touches the share it will read (the static schedule of `read`).
class ReadBuffer {
 public:
  ReadBuffer(std::size_t bytes, int threads) {
    constexpr std::size_t kHugePage = std::size_t(2) << 20;
    const std::size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    words_.reset(static_cast<std::uint64_t*>(std::aligned_alloc(kHugePage, size)));
    if (!words_) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(words_.get(), size, MADV_HUGEPAGE);  // a hint: failure just means normal pages
#endif
    count_ = static_cast<long>(size / sizeof(std::uint64_t));
    std::uint64_t* words = words_.get();
    const long count = count_;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < count; ++i) words[i] = static_cast<std::uint64_t>(i);
  }

  // Seconds for `threads` threads to read the first `bytes` (whole cache lines) `times` times,
  // each thread its own contiguous share every time.
  double read(std::size_t bytes, int threads, int times) {
    constexpr long kWordsPerLine = 8;  // one 64-byte cache line
    const std::uint64_t* words = words_.get();
    const long lines = static_cast<long>(bytes / sizeof(std::uint64_t)) / kWordsPerLine;
    std::uint64_t sum = 0;
    const auto begin = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    {
      Words acc = {};
      for (int time = 0; time < times; ++time) {
#pragma omp for schedule(static) nowait
        for (long line = 0; line < lines; ++line) {
          const Words* v = reinterpret_cast<const Words*>(words + line * kWordsPerLine);
          acc += (v[0] + v[1]) + (v[2] + v[3]);  // one short chain per cache line
        }
      }
      sum += acc[0] + acc[1];
    }
    escape(&sum);
    const double seconds = seconds_since(begin);
    total_ += sum;
    return seconds;
  }

  std::size_t bytes() const { return static_cast<std::size_t>(count_) * sizeof(std::uint64_t); }
  ~ReadBuffer() { consume(total_); }

 private:
  std::unique_ptr<std::uint64_t[], Free> words_;
  long count_ = 0;
  std::uint64_t total_ = 0;
};

// Seconds of each streaming pass over `bytes` of memory, read by `threads` threads.
std::vector<double> read_passes(std::size_t bytes, int threads, int passes) {
  claim_team(threads);  // an OpenMP team: a child forked after it gets the fork check's error, not a hang
  ReadBuffer buffer(bytes, threads);
  std::vector<double> seconds;
  for (int pass = 0; pass < passes; ++pass) seconds.push_back(buffer.read(buffer.bytes(), threads, 1));
  return seconds;
}

// Read bandwidth (bytes per second, the best of `passes`) of `threads` threads over each working
// set in `sizes` (bytes, whole cache lines), one buffer for all: each pass reads its working set
// as many times as make at least `pass_bytes`, so that a small one is not timed in microseconds.
// The passes go over all the sizes in turn, so that a busy spell of the machine disturbs one
// pass of several sizes rather than every pass of one.
std::vector<double> read_sweep(const std::vector<long long>& sizes, int threads, int passes, long long pass_bytes) {
  claim_team(threads);  // as read_passes
  long long largest = 0;
  for (long long size : sizes) largest = std::max(largest, size);
  ReadBuffer buffer(static_cast<std::size_t>(largest), threads);
  std::vector<double> bandwidth(sizes.size(), 0.0);
  for (int pass = 0; pass < passes; ++pass)
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      const std::size_t bytes = static_cast<std::size_t>(sizes[k]) / 64 * 64;
      const int times = static_cast<int>(std::max<long long>(1, (pass_bytes + sizes[k] - 1) / sizes[k]));
      bandwidth[k] = std::max(bandwidth[k], static_cast<double>(bytes) * times / buffer.read(bytes, threads, times));
    }
  return bandwidth;
}

// Cores this process may run on (its CPU affinity where the OS has one).
long usable_cores() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
  return static_cast<long>(std::thread::hardware_concurrency());
}

#ifdef __linux__
// Pins the calling thread to one CPU for its lifetime, then gives it back the CPUs it had.
class PinnedHere {
 public:
  explicit PinnedHere(int cpu) {
    pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_);
    pin(cpu);
  }
  ~PinnedHere() { pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_); }
  static void pin(int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
  }

 private:
  cpu_set_t saved_;
};
#endif

// Seconds for `rounds` round trips of one cache line between the calling thread and a thread
// started for the purpose: the caller writes an odd number and waits for the next even one, the
// partner answers. The two are pinned to two different CPUs for the run (Linux), so it is
// always a core-to-core figure. Plain threads, not an OpenMP team: an OpenMP team's threads
// keep spinning for milliseconds after its region, on the cores that the next measurement
// (another runtime's threads) needs. The first round trip, which waits for the partner to
// start on its CPU (milliseconds on this VM when that CPU has idled), is not timed. Spins with a
// pause; on a machine busier than its cores the result is a scheduler's time slice, not the
// hardware's. Refused with one usable core.
double handoff(long long rounds) {
  if (usable_cores() < 2) throw std::runtime_error("the round trip needs two usable cores, this process has one");
  struct alignas(64) Line {
    long long value = 0;
  } line;
#ifdef __linux__
  cpu_set_t allowed;
  sched_getaffinity(0, sizeof(allowed), &allowed);
  const int here = sched_getcpu();
  int there = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE && there < 0; ++cpu)
    if (CPU_ISSET(cpu, &allowed) && cpu != here) there = cpu;
  PinnedHere pinned(here);
#endif
  std::thread partner([&] {
#ifdef __linux__
    PinnedHere::pin(there);
#endif
    for (long long k = 0; k <= rounds; ++k) {
      while (__atomic_load_n(&line.value, __ATOMIC_ACQUIRE) != 2 * k + 1) spin_pause();
      __atomic_store_n(&line.value, 2 * k + 2, __ATOMIC_RELEASE);
    }
  });
  auto round_trip = [&line](long long k) {
    __atomic_store_n(&line.value, 2 * k + 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&line.value, __ATOMIC_ACQUIRE) != 2 * k + 2) spin_pause();
  };
  round_trip(0);  // untimed: waits for the partner to start on its CPU
  const auto begin = Clock::now();
  for (long long k = 1; k <= rounds; ++k) round_trip(k);
  const double seconds = seconds_since(begin);
  partner.join();
  return seconds;
}

void require_positive(long long value, const char* name) {
  if (value < 1) throw py::value_error(std::string(name) + " must be >= 1, got " + std::to_string(value));
}

// The arguments every read probe takes: threads and passes >= 1, threads 1 without OpenMP.
void check_read(long long threads, long long passes) {
  require_positive(threads, "threads");
  require_positive(passes, "passes");
#ifndef _OPENMP
  if (threads > 1) throw std::runtime_error("gradi._native was built without OpenMP: threads must be 1");
#endif
}

}  // namespace

void register_probes(py::module_& m) {
  m.def(
      "probe_mul_chain",
      [](long long links) {
        require_positive(links, "links");
        if (!kHaveClockChain)
          throw std::runtime_error("no instruction chain of known latency on this architecture: the clock is not measured");
        constexpr long long kCyclesPerLink = 3;  // a 64-bit imul on every Intel Core and AMD Zen core
        const long long rounded = (links + 15) / 16 * 16;
        py::gil_scoped_release release;
        return std::make_pair(rounded * kCyclesPerLink, mul_chain(rounded));
      },
      py::arg("links"),
      "(cycles, seconds) of a chain of `links` dependent 64-bit integer multiplies (rounded up to 16), "
      "at 3 cycles each: the clock.");
  m.def(
      "probe_fma_chain",
      [](long long links) {
        require_positive(links, "links");
        if (!kHaveClockChain || !simd_supports(Isa::avx2))
          throw std::runtime_error("this CPU or build has no FMA instruction for the chain");
        const long long rounded = (links + 15) / 16 * 16;
        py::gil_scoped_release release;
        return std::make_pair(rounded, fma_chain(rounded));
      },
      py::arg("links"),
      "(FMAs, seconds) of a chain of `links` dependent float32 FMAs (rounded up to 16): the clock's "
      "cross-check, at 4 or 5 cycles each.");
  m.def(
      "probe_op_mix",
      [](const std::string& isa, long long dim, bool symmetric, long long rounds, long long threads) {
        require_positive(rounds, "rounds");
        require_positive(threads, "threads");
        if (dim < 1 || dim > kOpMixMaxDim)
          throw py::value_error("dim must be 1 to " + std::to_string(kOpMixMaxDim) + ", got " + std::to_string(dim));
        const Isa chosen = parse_isa(isa, false);
        py::gil_scoped_release release;
        return together(static_cast<int>(threads), [&] { return opmix(chosen, static_cast<int>(dim), symmetric, rounds); });
      },
      py::arg("isa"), py::arg("dim"), py::arg("symmetric"), py::arg("rounds"), py::arg("threads") = 1,
      "(pair-vectors, seconds) of `rounds` rounds of the pair-update kernels' op mix in registers, with "
      "the vectors of `isa`: each pair once and both rows updated if `symmetric`, else every pair. "
      "With `threads` > 1, every thread runs them at the same time: their pair-vectors, and the "
      "seconds from the first start to the last end.");
  m.def(
      "probe_fma",
      [](const std::string& isa, long long rounds, long long threads) {
        require_positive(rounds, "rounds");
        require_positive(threads, "threads");
        const Isa chosen = parse_isa(isa, false);
        py::gil_scoped_release release;
        return together(static_cast<int>(threads), [&] { return fma(chosen, rounds); });
      },
      py::arg("isa"), py::arg("rounds"), py::arg("threads") = 1,
      "(vector FMA instructions, seconds) of `rounds` rounds of independent float32 FMAs on this "
      "thread, with the vectors of `isa` ('baseline' counts a multiply and an add where it has no FMA); "
      "with `threads` > 1, on that many threads at the same time (as probe_op_mix).");
  m.def(
      "probe_vector_bytes", [](const std::string& isa) { return vector_bytes(parse_isa(isa, false)); },
      py::arg("isa"), "Bytes in one vector of `isa`, as the tuned kernel uses it.");
  m.def(
      "probe_read",
      [](long long bytes, long long threads, long long passes) {
        require_positive(bytes, "bytes");
        check_read(threads, passes);
        py::gil_scoped_release release;
        return read_passes(static_cast<std::size_t>(bytes), static_cast<int>(threads), static_cast<int>(passes));
      },
      py::arg("bytes"), py::arg("threads"), py::arg("passes"),
      "Seconds of each of `passes` streaming reads of `bytes` bytes (rounded up to 2 MiB) by `threads` threads.");
  m.def(
      "probe_read_sweep",
      [](const std::vector<long long>& sizes, long long threads, long long passes, long long pass_bytes) {
        if (sizes.empty()) throw py::value_error("sizes must not be empty");
        for (long long size : sizes)
          if (size < 64) throw py::value_error("every size must be >= 64 bytes, got " + std::to_string(size));
        check_read(threads, passes);
        require_positive(pass_bytes, "pass_bytes");
        py::gil_scoped_release release;
        return read_sweep(sizes, static_cast<int>(threads), static_cast<int>(passes), pass_bytes);
      },
      py::arg("sizes"), py::arg("threads"), py::arg("passes"), py::arg("pass_bytes"),
      "Read bandwidth (bytes/s, best of `passes`) of `threads` threads over each working set in `sizes` "
      "(bytes), each pass reading it as often as make `pass_bytes`.");
  m.def(
      "probe_handoff",
      [](long long rounds) {
        require_positive(rounds, "rounds");
        py::gil_scoped_release release;
        return handoff(rounds);
      },
      py::arg("rounds"), "Seconds for `rounds` round trips of a cache line between two threads.");
}

}  // namespace gradi
