#include "ckks/ciphertext.h"

namespace xcloud {

size_t CiphertextBatch::memory_bytes() const {
  return c0.size() * sizeof(u64) + c1.size() * sizeof(u64) + seeds.size() * sizeof(Seed);
}

}  // namespace xcloud
