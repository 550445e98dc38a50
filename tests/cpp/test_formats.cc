// Checkpoint readers on synthetic files: GGUF (metadata, per-architecture name mapping,
// Q8_0 / Q4_1 / F16 dequantization, llama-only q/k row un-permutation) and safetensors, plus
// the clear errors for wrong magic, truncation, unsupported types and architectures and
// missing metadata keys.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cadence/model_config.h"
#include "model/checkpoint.h"
#include "model/gguf_checkpoint.h"
#include "model/tensor_types.h"
#include "test_harness.h"
#include "util/json.h"

using namespace cadence;

namespace {

class Bytes {
 public:
  template <typename T>
  Bytes& put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    data.insert(data.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    data.insert(data.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const std::vector<uint8_t>& bytes) {
    data.insert(data.end(), bytes.begin(), bytes.end());
    return *this;
  }
  std::vector<uint8_t> data;
};

std::string write_file(const std::string& name, const std::vector<uint8_t>& data) {
  const std::string path = "/tmp/cadence_test_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

uint16_t half_bits(float value) {  // exact for the small integers used here
  if (value == 0.0f) return 0;
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint32_t sign = (bits >> 16) & 0x8000;
  const int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xFF) - 127 + 15;
  return static_cast<uint16_t>(sign | (exponent << 10) | ((bits >> 13) & 0x3FF));
}

// GGUF metadata for a 1-layer model of architecture `arch` with hidden 8, 2 heads of dim 4
// (`skip_key`, when given, is left out).
void put_metadata(Bytes& b, const std::string& arch, const std::string& skip_key) {
  auto kv_u32 = [&](const std::string& key, uint32_t v) {
    if (key != skip_key) b.str(key).put<uint32_t>(4).put(v);
  };
  auto kv_f32 = [&](const std::string& key, float v) {
    if (key != skip_key) b.str(key).put<uint32_t>(6).put(v);
  };
  b.str("general.architecture").put<uint32_t>(8).str(arch);
  kv_u32(arch + ".embedding_length", 8);
  kv_u32(arch + ".feed_forward_length", 8);
  kv_u32(arch + ".block_count", 1);
  kv_u32(arch + ".attention.head_count", 2);
  kv_u32(arch + ".attention.head_count_kv", 2);
  kv_u32(arch + ".context_length", 128);
  kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  kv_f32(arch + ".rope.freq_base", 10000.0f);
  kv_u32("tokenizer.ggml.eos_token_id", 2);
  // A string array: only its length is kept.
  b.str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(32);
  for (int i = 0; i < 32; ++i) b.str("t" + std::to_string(i));
}

// A GGUF (metadata: put_metadata) with: blk.0.attn_q.weight [8 x 32] Q8_0, token_embd.weight
// [32 x 32] Q4_1 (dims ne0=32, ne1=32), output_norm.weight F16 [32].
std::vector<uint8_t> make_gguf(uint32_t num_tensors_claimed = 3, const std::string& arch = "llama",
                               const std::string& skip_key = "") {
  Bytes b;
  const uint64_t num_kv = skip_key.empty() ? 11 : 10;
  b.raw({'G', 'G', 'U', 'F'})
      .put<uint32_t>(3)
      .put<uint64_t>(num_tensors_claimed)
      .put<uint64_t>(num_kv);
  put_metadata(b, arch, skip_key);
  const uint64_t q_bytes = 8 * 34, embd_bytes = 32 * 20, norm_bytes = 32 * 2;
  b.str("blk.0.attn_q.weight").put<uint32_t>(2).put<uint64_t>(32).put<uint64_t>(8);
  b.put<uint32_t>(8).put<uint64_t>(0);
  b.str("token_embd.weight").put<uint32_t>(2).put<uint64_t>(32).put<uint64_t>(32);
  b.put<uint32_t>(3).put<uint64_t>(q_bytes);
  b.str("output_norm.weight").put<uint32_t>(1).put<uint64_t>(32);
  b.put<uint32_t>(1).put<uint64_t>(q_bytes + embd_bytes);
  while (b.data.size() % 32 != 0) b.put<uint8_t>(0);
  // Q8_0 rows: row r, element i = (r + 1) * (i - 16), scale 1.
  for (int r = 0; r < 8; ++r) {
    b.put(half_bits(static_cast<float>(r + 1)));
    for (int i = 0; i < 32; ++i) b.put<int8_t>(static_cast<int8_t>(i - 16));
  }
  // Q4_1 blocks: d = 2, m = -3, nibble for element i: i % 16.
  for (int blk = 0; blk < 32; ++blk) {
    b.put(half_bits(2.0f)).put(half_bits(-3.0f));
    for (int i = 0; i < 16; ++i) b.put<uint8_t>(static_cast<uint8_t>((i & 0xF) | ((15 - i) << 4)));
  }
  for (int i = 0; i < 32; ++i) b.put(half_bits(static_cast<float>(i)));
  (void)norm_bytes;
  return b.data;
}

}  // namespace

TEST(gguf_tensors_are_mapped_and_dequantized) {
  const std::string path = write_file("ok.gguf", make_gguf());
  auto checkpoint = Checkpoint::open(path);
  CHECK(checkpoint->has("model.embed_tokens.weight"));
  CHECK(checkpoint->has("model.norm.weight"));
  CHECK(checkpoint->has("model.layers.0.self_attn.q_proj.weight"));
  CHECK(checkpoint->get("model.embed_tokens.weight").shape == (std::vector<int64_t>{32, 32}));

  const std::vector<float> embed = checkpoint->read_float("model.embed_tokens.weight", {32, 32});
  CHECK_NEAR(embed[0], 2.0f * 0 - 3.0f, 0.0);
  CHECK_NEAR(embed[5], 2.0f * 5 - 3.0f, 0.0);
  CHECK_NEAR(embed[16 + 5], 2.0f * (15 - 5) - 3.0f, 0.0);  // high nibble -> element 16 + i
  const std::vector<float> norm = checkpoint->read_float("model.norm.weight", {32});
  for (int i = 0; i < 32; ++i) CHECK_NEAR(norm[i], i, 0.0);
  CHECK_THROWS(checkpoint->read_float("model.norm.weight", {16}));
  CHECK_THROWS(checkpoint->get("lm_head.weight"));
  std::remove(path.c_str());
}

TEST(gguf_llama_q_rows_are_unpermuted) {
  // 2 heads of dim 4. llama.cpp stores HF row h*4 + half*2 + j at file row h*4 + 2*j + half;
  // file row r holds the value (r + 1) * 4 at column 20.
  const std::string path = write_file("perm.gguf", make_gguf());
  auto checkpoint = Checkpoint::open(path);
  const std::vector<float> q =
      checkpoint->read_float("model.layers.0.self_attn.q_proj.weight", {8, 32});
  const int expected_file_row[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) CHECK_NEAR(q[r * 32 + 20], (expected_file_row[r] + 1) * 4.0f, 0.0);
  std::remove(path.c_str());
}

TEST(gguf_model_config_is_read) {
  const std::string path = write_file("cfg.gguf", make_gguf());
  const ModelConfig config = load_gguf_model_config(path);
  CHECK(config.architecture == "LlamaForCausalLM");
  CHECK(config.hidden_size == 8);
  CHECK(config.num_heads == 2);
  CHECK(config.head_dim == 4);
  CHECK(config.vocab_size == 32);
  CHECK(config.tie_word_embeddings);
  CHECK(config.eos_token_ids == std::vector<int32_t>{2});
  std::remove(path.c_str());
}

TEST(gguf_only_llama_q_rows_are_permuted) {
  // qwen2 (like qwen3, phi3, gemma2) is converted with HF's row order: file row r is HF row r.
  const std::string path = write_file("qwen2.gguf", make_gguf(3, "qwen2"));
  auto checkpoint = Checkpoint::open(path);
  const std::vector<float> q =
      checkpoint->read_float("model.layers.0.self_attn.q_proj.weight", {8, 32});
  for (int r = 0; r < 8; ++r) CHECK_NEAR(q[r * 32 + 20], (r + 1) * 4.0f, 0.0);
  std::remove(path.c_str());
}

TEST(gguf_tensor_names_follow_the_architecture) {
  auto hf = [](const std::string& arch, const std::string& name) {
    return gguf_to_hf_tensor_name(arch, name);
  };
  // ffn_norm: Llama's norm after attention, Gemma 2's norm before the MLP.
  CHECK(hf("llama", "blk.2.ffn_norm.weight") == "model.layers.2.post_attention_layernorm.weight");
  CHECK(hf("gemma2", "blk.2.ffn_norm.weight") == "model.layers.2.pre_feedforward_layernorm.weight");
  CHECK(hf("gemma2", "blk.0.post_attention_norm.weight") ==
        "model.layers.0.post_attention_layernorm.weight");
  CHECK(hf("gemma2", "blk.0.post_ffw_norm.weight") ==
        "model.layers.0.post_feedforward_layernorm.weight");
  CHECK(hf("llama", "blk.0.post_ffw_norm.weight").empty());
  CHECK(hf("qwen2", "blk.1.attn_k.bias") == "model.layers.1.self_attn.k_proj.bias");
  CHECK(hf("qwen3", "blk.1.attn_q_norm.weight") == "model.layers.1.self_attn.q_norm.weight");
  CHECK(hf("qwen2", "blk.1.attn_q_norm.weight").empty());
  // Phi-3's fused projections; its ffn_up is HF's gate_up_proj.
  CHECK(hf("phi3", "blk.0.attn_qkv.weight") == "model.layers.0.self_attn.qkv_proj.weight");
  CHECK(hf("phi3", "blk.0.ffn_up.weight") == "model.layers.0.mlp.gate_up_proj.weight");
  CHECK(hf("phi3", "blk.0.ffn_gate.weight").empty());
  CHECK(hf("phi3", "rope_factors_long.weight").empty());
  CHECK(hf("phi3", "output.weight") == "lm_head.weight");
  CHECK(hf("mamba", "token_embd.weight").empty());
}

TEST(gguf_unsupported_architecture_lists_the_supported_ones) {
  const std::string path = write_file("mamba.gguf", make_gguf(3, "mamba"));
  for (int reader = 0; reader < 2; ++reader) {
    std::string message;
    try {
      if (reader == 0) Checkpoint::open(path);
      if (reader == 1) load_gguf_model_config(path);
    } catch (const std::runtime_error& error) {
      message = error.what();
    }
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("GGUF architecture 'mamba' is not supported (supported: llama, qwen2, "
                       "qwen3, phi3, gemma2)") != std::string::npos);
  }
  std::remove(path.c_str());
}

TEST(gguf_missing_key_is_named) {
  const std::string key = "qwen3.attention.layer_norm_rms_epsilon";
  const std::string path = write_file("nokey.gguf", make_gguf(3, "qwen3", key));
  std::string message;
  try {
    load_gguf_model_config(path);
  } catch (const std::runtime_error& error) {
    message = error.what();
  }
  CHECK(message.find("'" + key + "'") != std::string::npos);
  CHECK(message.find(path) != std::string::npos);
  std::remove(path.c_str());
}

TEST(gguf_qwen3_config_has_qk_norm) {
  const std::string path = write_file("qwen3.gguf", make_gguf(3, "qwen3"));
  const ModelConfig config = load_gguf_model_config(path);
  CHECK(config.architecture == "Qwen3ForCausalLM");
  CHECK(config.qk_norm);
  CHECK(!config.attention_bias);
  std::remove(path.c_str());
}

TEST(gguf_errors_are_clear) {
  std::vector<uint8_t> bad_magic = make_gguf();
  bad_magic[0] = 'X';
  const std::string p1 = write_file("magic.gguf", bad_magic);
  CHECK_THROWS(Checkpoint::open(p1));

  std::vector<uint8_t> truncated = make_gguf();
  truncated.resize(truncated.size() - 40);  // cut into the last tensor's data
  const std::string p2 = write_file("trunc.gguf", truncated);
  CHECK_THROWS(Checkpoint::open(p2));

  std::vector<uint8_t> header_only = make_gguf();
  header_only.resize(200);  // cut inside the metadata
  const std::string p3 = write_file("short.gguf", header_only);
  CHECK_THROWS(Checkpoint::open(p3));

  const std::string p4 = write_file("lying.gguf", make_gguf(1000000));  // bogus tensor count
  CHECK_THROWS(Checkpoint::open(p4));
  for (const auto& p : {p1, p2, p3, p4}) std::remove(p.c_str());
}

TEST(unknown_tensor_type_names_tensor_and_type) {
  std::vector<uint8_t> data = make_gguf();
  // Patch the type of blk.0.attn_q.weight (Q8_0 = 8) to Q2_K (10), unsupported here.
  const std::string name = "blk.0.attn_q.weight";
  auto it = std::search(data.begin(), data.end(), name.begin(), name.end());
  const size_t type_offset = static_cast<size_t>(it - data.begin()) + name.size() + 4 + 16;
  data[type_offset] = 10;
  const std::string path = write_file("type.gguf", data);
  bool named = false;
  try {
    Checkpoint::open(path);
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    named = message.find("blk.0.attn_q.weight") != std::string::npos &&
            message.find("Q2_K (GGML type id 10)") != std::string::npos;
  }
  CHECK(named);
  std::remove(path.c_str());
}

TEST(safetensors_round_trip) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"__metadata__":{"x":"y"}})";
  Bytes b;
  b.put<uint64_t>(header.size()).raw(std::vector<uint8_t>(header.begin(), header.end()));
  for (float v : {1.0f, -2.0f, 3.5f, 0.25f}) b.put(v);
  b.put<uint16_t>(0x3F80).put<uint16_t>(0xC000);  // bf16 1.0, -2.0
  const std::string path = write_file("t.safetensors", b.data);
  auto checkpoint = Checkpoint::open(path);
  const std::vector<float> a = checkpoint->read_float("a", {2, 2});
  CHECK(a == (std::vector<float>{1.0f, -2.0f, 3.5f, 0.25f}));
  const std::vector<float> bf = checkpoint->read_float("b", {2});
  CHECK(bf == (std::vector<float>{1.0f, -2.0f}));

  std::vector<uint8_t> truncated = b.data;
  truncated.resize(truncated.size() - 3);
  const std::string p2 = write_file("trunc.safetensors", truncated);
  CHECK_THROWS(Checkpoint::open(p2));
  std::remove(path.c_str());
  std::remove(p2.c_str());
}

TEST(json_parser_handles_escapes_and_rejects_garbage) {
  const json::Value v = json::parse(R"({"s":"a\u00e9\n","n":[1,-2.5e3],"t":true,"z":null})");
  CHECK(v.find("s")->string == "a\xc3\xa9\n");
  CHECK(v.find("n")->array[1].number == -2500.0);
  CHECK(v.find("t")->boolean);
  CHECK_THROWS(json::parse("{\"a\":}"));
  CHECK_THROWS(json::parse("[1,2"));
  CHECK_THROWS(json::parse("{} x"));
}

TEST(half_precision_conversion) {
  CHECK(half_to_float(0x3C00) == 1.0f);
  CHECK(half_to_float(0xC000) == -2.0f);
  CHECK(half_to_float(0x0001) == 5.960464477539063e-08f);  // smallest subnormal
  CHECK(half_to_float(0x7C00) == INFINITY);
}

TEST_MAIN()
