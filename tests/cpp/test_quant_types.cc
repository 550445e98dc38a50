// GGUF quantized tensor types Q5_0, Q5_1, Q4_K, Q5_K and Q6_K: one hand-packed block per type
// against values computed from its fields, multi-block tensors read through a GGUF file, and
// the load errors (unsupported or unknown type ids, bad block multiples, truncated files,
// wrong magic). The packers below are written from the block layout independently of the
// dequantizers; tests/python/test_gguf_quant_types.py checks both against gguf's reference.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cadence/gguf_tensor.h"
#include "model/checkpoint.h"
#include "model/tensor_types.h"
#include "test_harness.h"

using namespace cadence;

namespace {

constexpr uint32_t kQ2_K = 10;    // a GGML type this build does not read
constexpr uint32_t kIQ4_XS = 23;  // likewise

// fp16 bits of a float that fp16 represents exactly (normal numbers and zero).
uint16_t half_bits(float value) {
  if (value == 0.0f) return 0;
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint32_t sign = (bits >> 16) & 0x8000;
  const int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xFF) - 127 + 15;
  return static_cast<uint16_t>(sign | (exponent << 10) | ((bits >> 13) & 0x3FF));
}

void put_half(std::vector<uint8_t>& out, float value) {
  const uint16_t bits = half_bits(value);
  out.push_back(static_cast<uint8_t>(bits & 0xFF));
  out.push_back(static_cast<uint8_t>(bits >> 8));
}

// ---- block packers (the layout, written from the encoder's side) ------------------------

// Q5_0 / Q5_1 payload: 4 bytes qh (bit i = bit 4 of q[i]) then 16 bytes of nibble pairs
// (byte i: q[i] low, q[i + 16] high).
void put_q5_payload(std::vector<uint8_t>& out, const int q[32]) {
  uint32_t qh = 0;
  for (int i = 0; i < 32; ++i) qh |= static_cast<uint32_t>((q[i] >> 4) & 1) << i;
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<uint8_t>(qh >> (8 * k)));
  for (int i = 0; i < 16; ++i)
    out.push_back(static_cast<uint8_t>((q[i] & 15) | (q[i + 16] & 15) << 4));
}

std::vector<uint8_t> pack_q5_0(float d, const int q[32]) {
  std::vector<uint8_t> out;
  put_half(out, d);
  put_q5_payload(out, q);
  return out;
}

std::vector<uint8_t> pack_q5_1(float d, float m, const int q[32]) {
  std::vector<uint8_t> out;
  put_half(out, d);
  put_half(out, m);
  put_q5_payload(out, q);
  return out;
}

// 8 six-bit scales and mins into the 12 bytes shared by Q4_K and Q5_K.
void put_k_scales(std::vector<uint8_t>& out, const int scales[8], const int mins[8]) {
  for (int j = 0; j < 4; ++j)
    out.push_back(static_cast<uint8_t>(scales[j] | (scales[j + 4] >> 4) << 6));
  for (int j = 0; j < 4; ++j)
    out.push_back(static_cast<uint8_t>(mins[j] | (mins[j + 4] >> 4) << 6));
  for (int j = 0; j < 4; ++j) {
    out.push_back(static_cast<uint8_t>((scales[j + 4] & 15) | (mins[j + 4] & 15) << 4));
  }
}

// qs of Q4_K / Q5_K: 4 groups of 32 bytes; byte 32c + l holds q[64c + l] (low nibble) and
// q[64c + 32 + l] (high nibble).
void put_k_nibbles(std::vector<uint8_t>& out, const int q[256]) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      out.push_back(static_cast<uint8_t>((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4));
    }
  }
}

std::vector<uint8_t> pack_q4_k(float d, float dmin, const int scales[8], const int mins[8],
                               const int q[256]) {
  std::vector<uint8_t> out;
  put_half(out, d);
  put_half(out, dmin);
  put_k_scales(out, scales, mins);
  put_k_nibbles(out, q);
  return out;
}

std::vector<uint8_t> pack_q5_k(float d, float dmin, const int scales[8], const int mins[8],
                               const int q[256]) {
  std::vector<uint8_t> out;
  put_half(out, d);
  put_half(out, dmin);
  put_k_scales(out, scales, mins);
  for (int l = 0; l < 32; ++l) {  // qh[l]: bit s = bit 4 of q[32s + l]
    int byte = 0;
    for (int s = 0; s < 8; ++s) byte |= ((q[32 * s + l] >> 4) & 1) << s;
    out.push_back(static_cast<uint8_t>(byte));
  }
  put_k_nibbles(out, q);
  return out;
}

// q holds the unsigned 6-bit values (0..63, the stored value is q - 32).
std::vector<uint8_t> pack_q6_k(float d, const int scales[16], const int q[256]) {
  std::vector<uint8_t> out(208);  // ql [0, 128), qh [128, 192), scales [192, 208), then d
  for (int h = 0; h < 2; ++h) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const int value = q[128 * h + 32 * g + l];
        uint8_t& low = out[64 * h + 32 * (g & 1) + l];
        uint8_t& high = out[128 + 32 * h + l];
        low = static_cast<uint8_t>(low | (value & 15) << (4 * (g >> 1)));
        high = static_cast<uint8_t>(high | (value >> 4) << (2 * g));
      }
    }
  }
  for (int i = 0; i < 16; ++i) out[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(scales[i]));
  put_half(out, d);
  return out;
}

std::vector<float> dequantize(TensorType type, const std::vector<uint8_t>& bytes,
                              int64_t num_elements) {
  CHECK(static_cast<int64_t>(bytes.size()) == tensor_bytes(type, num_elements));
  std::vector<float> out(static_cast<size_t>(num_elements));
  tensor_type_traits(type).to_float(bytes.data(), out.data(), num_elements);
  return out;
}

// ---- a minimal GGUF writer ---------------------------------------------------------------

struct TensorSpec {
  std::string name;
  uint32_t type_id;
  std::vector<uint64_t> dims;  // GGML order: dims[0] is the row length
  std::vector<uint8_t> data;
};

template <typename T>
void put(std::vector<uint8_t>& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// GGUF v3 with general.architecture = "qwen2" (no llama row permutation) and the tensors'
// data 32-byte aligned. header_end_offset: where the last tensor info ends (for tests that
// patch or cut the file there).
std::vector<uint8_t> make_gguf(const std::vector<TensorSpec>& tensors,
                               size_t* header_end_offset = nullptr) {
  std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors.size());
  put<uint64_t>(out, 1);
  put_string(out, "general.architecture");
  put<uint32_t>(out, 8);  // string
  put_string(out, "qwen2");
  uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t dim : t.dims) put<uint64_t>(out, dim);
    put<uint32_t>(out, t.type_id);
    put<uint64_t>(out, offset);
    offset += (t.data.size() + 31) / 32 * 32;
  }
  if (header_end_offset != nullptr) *header_end_offset = out.size();
  for (const TensorSpec& t : tensors) {
    while (out.size() % 32 != 0) out.push_back(0);
    out.insert(out.end(), t.data.begin(), t.data.end());
  }
  return out;
}

std::string write_file(const std::string& name, const std::vector<uint8_t>& data) {
  const std::string path = "/tmp/cadence_quant_test_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

// The message of the std::runtime_error that f throws; "" (and a failed CHECK) otherwise.
std::string runtime_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& error) {
    return error.what();
  } catch (...) {
    CHECK(!"threw something other than std::runtime_error");
    return "";
  }
  CHECK(!"did not throw");
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  const bool found = haystack.find(needle) != std::string::npos;
  if (!found) std::printf("  message \"%s\" lacks \"%s\"\n", haystack.c_str(), needle.c_str());
  return found;
}

// Scales and mins for Q4_K / Q5_K: values >= 16 exercise the 2 high bits packed apart.
const int kScales[8] = {1, 2, 3, 63, 17, 40, 5, 33};
const int kMins[8] = {0, 7, 63, 1, 32, 16, 48, 9};

}  // namespace

TEST(to_codes_reproduces_to_float_for_every_quantized_type) {
  // Random block bytes (with finite fp16 scale fields) through both conversions: the codes
  // with their scale and min give back to_float's values exactly (the products are exact).
  struct Case {
    TensorType type;
    std::vector<int> half_offsets;  // fp16 fields of a block
    int max_code;
  };
  const Case cases[] = {
      {TensorType::kQ8_0, {0}, 255},   {TensorType::kQ4_0, {0}, 15},
      {TensorType::kQ4_1, {0, 2}, 15}, {TensorType::kQ5_0, {0}, 31},
      {TensorType::kQ5_1, {0, 2}, 31}, {TensorType::kQ4_K, {0, 2}, 15},
      {TensorType::kQ5_K, {0, 2}, 31}, {TensorType::kQ6_K, {208}, 63},
  };
  uint64_t state = 12345;
  auto next_byte = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint8_t>(state >> 56);
  };
  for (const Case& c : cases) {
    const TensorTypeTraits& traits = tensor_type_traits(c.type);
    const int64_t n = 2 * 256;
    std::vector<uint8_t> bytes(static_cast<size_t>(tensor_bytes(c.type, n)));
    for (auto& b : bytes) b = next_byte();
    for (int64_t block = 0; block < n / traits.block_elements; ++block) {
      for (int offset : c.half_offsets) {
        std::vector<uint8_t> half;
        put_half(half, (static_cast<int>(next_byte()) - 128) / 512.0f);
        std::memcpy(&bytes[block * traits.block_bytes + offset], half.data(), 2);
      }
    }
    const std::vector<float> expected = dequantize(c.type, bytes, n);
    CHECK(traits.to_codes != nullptr);
    std::vector<uint8_t> codes(n);
    std::vector<float> scales(n / traits.code_block), mins(n / traits.code_block);
    traits.to_codes(bytes.data(), n, codes.data(), scales.data(), mins.data());
    int num_bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float value = std::fma(scales[i / traits.code_block], static_cast<float>(codes[i]),
                                   mins[i / traits.code_block]);
      num_bad += value != expected[i] || codes[i] > c.max_code;
    }
    if (num_bad != 0) std::printf("  %s: %d elements differ\n", traits.name, num_bad);
    CHECK(num_bad == 0);
  }
  CHECK(tensor_type_traits(TensorType::kF16).to_codes == nullptr);
}

TEST(q5_0_block_by_hand) {
  int q[32];
  for (int i = 0; i < 32; ++i) q[i] = (i * 7 + 3) % 32;
  const std::vector<float> x = dequantize(TensorType::kQ5_0, pack_q5_0(0.5f, q), 32);
  for (int i = 0; i < 32; ++i) CHECK(x[i] == 0.5f * static_cast<float>(q[i] - 16));
  CHECK(x[0] == -6.5f);   // q = 3: 0.5 * (3 - 16)
  CHECK(x[4] == 7.5f);    // q = 31 (high bit set): 0.5 * (31 - 16)
  CHECK(x[19] == -4.0f);  // q = 136 % 32 = 8, in the high nibble half: 0.5 * (8 - 16)
}

TEST(q5_1_block_by_hand) {
  int q[32];
  for (int i = 0; i < 32; ++i) q[i] = (i * 5) % 32;
  const std::vector<float> x = dequantize(TensorType::kQ5_1, pack_q5_1(0.25f, -3.0f, q), 32);
  for (int i = 0; i < 32; ++i) CHECK(x[i] == 0.25f * static_cast<float>(q[i]) - 3.0f);
  CHECK(x[7] == 0.25f * 3 - 3.0f);  // q = 35 % 32 = 3
  CHECK(x[6] == 4.5f);              // q = 30 (high bit set): 0.25 * 30 - 3
}

TEST(q4_k_block_by_hand) {
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 7) % 16;
  const std::vector<float> x =
      dequantize(TensorType::kQ4_K, pack_q4_k(0.25f, 0.5f, kScales, kMins, q), 256);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32;
    CHECK(x[e] == 0.25f * kScales[sub] * q[e] - 0.5f * kMins[sub]);
  }
  // Element 255: sub-block 7 (scale 33, min 9), q = 1785 % 16 = 9: 0.25*33*9 - 0.5*9.
  CHECK(x[255] == 69.75f);
  // Element 40: sub-block 1 (scale 2, min 7), q = 280 % 16 = 8: 0.25*2*8 - 0.5*7.
  CHECK(x[40] == 0.5f);
}

TEST(q5_k_block_by_hand) {
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 11 + 5) % 32;
  const std::vector<float> x =
      dequantize(TensorType::kQ5_K, pack_q5_k(0.5f, 0.25f, kScales, kMins, q), 256);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32;
    CHECK(x[e] == 0.5f * kScales[sub] * q[e] - 0.25f * kMins[sub]);
  }
  // Element 200: sub-block 6 (scale 5, min 48), q = 2205 % 32 = 29: 0.5*5*29 - 0.25*48.
  CHECK(x[200] == 60.5f);
}

TEST(q6_k_block_by_hand) {
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 13 + 1) % 64;
  const int scales[16] = {1, -2, 3, -4, 5, 127, -128, 8, 9, 10, -11, 12, 13, 14, 15, -16};
  const std::vector<float> x = dequantize(TensorType::kQ6_K, pack_q6_k(0.125f, scales, q), 256);
  for (int e = 0; e < 256; ++e) CHECK(x[e] == 0.125f * scales[e / 16] * (q[e] - 32));
  // Element 100: scale index 6 (-128), q = 1301 % 64 = 21: 0.125 * -128 * (21 - 32).
  CHECK(x[100] == 176.0f);
  // Element 255: scale -16, q = 3316 % 64 = 52: 0.125 * -16 * 20.
  CHECK(x[255] == -40.0f);
}

TEST(multi_block_tensors_through_a_gguf_file) {
  // Q6_K [3 rows x 512] (2 super-blocks per row) and Q5_0 [5 rows x 96] (3 blocks per row):
  // block b gets scale b + 1, so a mix-up of blocks, rows or offsets changes the values.
  int q6[256], q5[32];
  for (int e = 0; e < 256; ++e) q6[e] = e % 64;
  for (int i = 0; i < 32; ++i) q5[i] = 31 - i;
  int scales6[16];
  for (int i = 0; i < 16; ++i) scales6[i] = i - 8;
  TensorSpec big{"blk.0.ffn_down.weight", 14, {512, 3}, {}};
  for (int b = 0; b < 6; ++b) {
    const std::vector<uint8_t> block = pack_q6_k(static_cast<float>(b + 1), scales6, q6);
    big.data.insert(big.data.end(), block.begin(), block.end());
  }
  TensorSpec small{"custom.odd", 6, {96, 5}, {}};
  for (int b = 0; b < 15; ++b) {
    const std::vector<uint8_t> block = pack_q5_0(static_cast<float>(b + 1), q5);
    small.data.insert(small.data.end(), block.begin(), block.end());
  }
  const std::string path = write_file("multi.gguf", make_gguf({big, small}));

  const FloatTensor a = read_gguf_tensor(path, "blk.0.ffn_down.weight");
  CHECK(a.shape == (std::vector<int64_t>{3, 512}));
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 512; ++c) {
      const int block = r * 2 + c / 256, e = c % 256;
      CHECK(a.values[r * 512 + c] ==
            static_cast<float>(block + 1) * scales6[e / 16] * (q6[e] - 32));
    }
  }
  const FloatTensor b = read_gguf_tensor(path, "custom.odd");
  CHECK(b.shape == (std::vector<int64_t>{5, 96}));
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 96; ++c) {
      const int block = r * 3 + c / 32;
      CHECK(b.values[r * 96 + c] == static_cast<float>(block + 1) * (q5[c % 32] - 16));
    }
  }
  // The checkpoint sees the mapped tensor under its HF name with the same values.
  auto checkpoint = Checkpoint::open(path);
  CHECK(checkpoint->read_float("model.layers.0.mlp.down_proj.weight", {3, 512}) == a.values);
  CHECK(runtime_error_of([&] {
          read_gguf_tensor(path, "no.such.tensor");
        }).find("no.such.tensor") != std::string::npos);
  std::remove(path.c_str());
}

TEST(unsupported_types_name_file_tensor_and_type) {
  const std::vector<uint8_t> q2k_block(84, 0);  // Q2_K: 84 bytes per 256 elements
  const struct {
    uint32_t type_id;
    const char* expected;
  } cases[] = {
      {kQ2_K, "Q2_K (GGML type id 10)"},
      {11, "Q3_K (GGML type id 11)"},
      {kIQ4_XS, "IQ4_XS (GGML type id 23)"},
      {99, "unknown GGML type id 99"},
  };
  for (const auto& c : cases) {
    const std::string path =
        write_file("type" + std::to_string(c.type_id) + ".gguf",
                   make_gguf({{"blk.0.attn_q.weight", c.type_id, {256, 1}, q2k_block}}));
    const std::string via_checkpoint = runtime_error_of([&] { Checkpoint::open(path); });
    CHECK(contains(via_checkpoint, path));
    CHECK(contains(via_checkpoint, "'blk.0.attn_q.weight'"));
    CHECK(contains(via_checkpoint, c.expected));
    CHECK(contains(via_checkpoint, "Q4_K, Q5_K, Q6_K"));  // lists what is readable
    const std::string via_reader =
        runtime_error_of([&] { read_gguf_tensor(path, "blk.0.attn_q.weight"); });
    CHECK(contains(via_reader, c.expected));
    std::remove(path.c_str());
  }
  CHECK(ggml_type_name(kQ2_K) == std::string("Q2_K"));
  CHECK(ggml_type_name(39) == std::string("MXFP4"));
  CHECK(ggml_type_name(1000) == nullptr);
  CHECK(find_tensor_type(kQ2_K) == nullptr);
  CHECK(find_tensor_type(1000) == nullptr);
}

TEST(row_length_must_be_whole_super_blocks) {
  // 128 elements of Q4_K would be half a super-block.
  const std::string path = write_file(
      "rowlen.gguf", make_gguf({{"blk.0.attn_k.weight", 12, {128, 2}, std::vector<uint8_t>(144)}}));
  const std::string message = runtime_error_of([&] { Checkpoint::open(path); });
  CHECK(contains(message, "'blk.0.attn_k.weight'"));
  CHECK(contains(message, "Q4_K block size 256"));
  std::remove(path.c_str());
  CHECK_THROWS(tensor_bytes(TensorType::kQ6_K, 300));
}

TEST(corrupt_and_truncated_files_are_clear_errors) {
  int q[256] = {};
  const int scales[16] = {};
  const TensorSpec tensor{"blk.0.attn_output.weight", 14, {256, 2}, {}};
  TensorSpec two_blocks = tensor;
  for (int b = 0; b < 2; ++b) {
    const std::vector<uint8_t> block = pack_q6_k(1.0f, scales, q);
    two_blocks.data.insert(two_blocks.data.end(), block.begin(), block.end());
  }
  size_t header_end = 0;
  const std::vector<uint8_t> good = make_gguf({two_blocks}, &header_end);
  CHECK(header_end % 32 != 0);  // so that cutting there leaves the data section's start outside
  std::vector<std::string> paths;
  auto expect_error = [&](const std::string& name, const std::vector<uint8_t>& bytes,
                          const std::string& expected) {
    const std::string path = write_file(name, bytes);
    paths.push_back(path);
    const std::string via_checkpoint = runtime_error_of([&] { Checkpoint::open(path); });
    CHECK(contains(via_checkpoint, path));
    CHECK(contains(via_checkpoint, expected));
    const std::string via_reader =
        runtime_error_of([&] { read_gguf_tensor(path, "blk.0.attn_output.weight"); });
    CHECK(contains(via_reader, expected));
  };

  std::vector<uint8_t> truncated = good;
  truncated.resize(truncated.size() - 1);  // one byte short of the second block
  expect_error("trunc.gguf", truncated, "past the end of the file");

  std::vector<uint8_t> header_only = good;
  header_only.resize(header_end);  // the data section would start past the end
  expect_error("header.gguf", header_only, "data section starts past end of file");

  std::vector<uint8_t> far_offset = good;  // the tensor's offset field is the header's last 8 bytes
  const uint64_t huge = 1ull << 62;
  std::memcpy(far_offset.data() + header_end - 8, &huge, 8);
  expect_error("offset.gguf", far_offset, "past the end of the file");

  std::vector<uint8_t> many_elements = good;  // dims[0] = 2^40 and dims[1] = 2^40
  const uint64_t big_dim = 1ull << 40;
  const size_t dims_at = header_end - 8 - 4 - 16;
  std::memcpy(many_elements.data() + dims_at, &big_dim, 8);
  std::memcpy(many_elements.data() + dims_at + 8, &big_dim, 8);
  expect_error("elements.gguf", many_elements, "more than 2^56 elements");

  std::vector<uint8_t> bad_magic = good;
  bad_magic[1] = 'X';
  expect_error("magic.gguf", bad_magic, "bad magic");
  expect_error("empty.gguf", {}, "bad magic");
  expect_error("cut_header.gguf", std::vector<uint8_t>(good.begin(), good.begin() + 30),
               "unexpected end of file");

  paths.push_back(write_file("ok.gguf", good));  // the uncut file loads
  CHECK(Checkpoint::open(paths.back())->has("model.layers.0.self_attn.o_proj.weight"));
  for (const std::string& p : paths) std::remove(p.c_str());
}

TEST_MAIN()
