// Empty asm statements on vector values, shared by the tuned kernel (simd_kernel.hpp) and its
// op-mix probe (opmix_kernel.hpp): no instruction, but the compiler must treat the value as
// read or rewritten in a vector register there. Included by a per-instruction-set translation
// unit; internal linkage, like everything compiled per instruction set.
#pragma once

namespace gradi {
namespace {

#if defined(__x86_64__) || defined(__i386__)
#define GRADI_VECTOR_REG "v"
#elif defined(__aarch64__)
#define GRADI_VECTOR_REG "w"
#endif

#ifdef GRADI_VECTOR_REG
// v may have changed here: nothing computed from it can move across, and it lives in a register.
template <class V>
inline void opaque(V& v) {
  asm volatile("" : "+" GRADI_VECTOR_REG(v));
}
// v is used here, so whatever computes it stays.
template <class V>
inline void consume(const V& v) {
  asm volatile("" : : GRADI_VECTOR_REG(v));
}
#else
template <class V>
inline void opaque(V& v) {
  asm volatile("" : : "g"(&v) : "memory");
}
template <class V>
inline void consume(const V& v) {
  asm volatile("" : : "g"(&v) : "memory");
}
#endif

}  // namespace
}  // namespace gradi
