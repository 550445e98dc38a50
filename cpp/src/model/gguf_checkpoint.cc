#include "model/gguf_checkpoint.h"

#include <cstring>
#include <map>
#include <stdexcept>

namespace cadence {

std::string gguf_to_hf_tensor_name(const std::string& gguf_name) {
  static const std::map<std::string, std::string> kGlobal = {
      {"token_embd", "model.embed_tokens"},
      {"output_norm", "model.norm"},
      {"output", "lm_head"},
  };
  static const std::map<std::string, std::string> kPerLayer = {
      {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  const size_t suffix_dot = gguf_name.rfind('.');
  if (suffix_dot == std::string::npos) return "";
  const std::string suffix = gguf_name.substr(suffix_dot);  // ".weight" / ".bias"
  const std::string stem = gguf_name.substr(0, suffix_dot);
  if (stem.rfind("blk.", 0) == 0) {
    const size_t layer_end = stem.find('.', 4);
    if (layer_end == std::string::npos) return "";
    const std::string layer = stem.substr(4, layer_end - 4);
    auto it = kPerLayer.find(stem.substr(layer_end + 1));
    if (it == kPerLayer.end()) return "";
    return "model.layers." + layer + "." + it->second + suffix;
  }
  auto it = kGlobal.find(stem);
  return it == kGlobal.end() ? "" : it->second + suffix;
}

GgufCheckpoint::GgufCheckpoint(const std::string& path)
    : Checkpoint(path), gguf_(std::make_unique<GgufFile>(path)) {
  files_.push_back(gguf_->shared_file());
  const std::string arch = gguf_->get_string("general.architecture");
  if (arch == "llama") {
    rope_rows_permuted_ = true;
    num_heads_ = gguf_->get_int("llama.attention.head_count");
    num_kv_heads_ = num_heads_;
    if (gguf_->find("llama.attention.head_count_kv") != nullptr) {
      num_kv_heads_ = gguf_->get_int("llama.attention.head_count_kv");
    }
  }
  const MappedFile& file = gguf_->file();
  for (const GgufTensorInfo& info : gguf_->tensor_infos()) {
    const std::string hf_name = gguf_to_hf_tensor_name(info.name);
    if (hf_name.empty()) continue;  // e.g. rope_freqs: handled by the config, not a weight
    const TensorTypeTraits* traits = find_tensor_type(info.type_id);
    if (traits == nullptr) {
      throw std::runtime_error("tensor '" + info.name + "' in " + path + " has GGML type id " +
                               std::to_string(info.type_id) +
                               ", which this build cannot read (supported: F32, F16, BF16, "
                               "Q8_0, Q4_0, Q4_1)");
    }
    TensorRef tensor;
    tensor.name = hf_name;
    tensor.source_name = info.name;
    tensor.type = static_cast<TensorType>(info.type_id);
    tensor.shape.assign(info.dims.rbegin(), info.dims.rend());
    if (info.dims[0] % traits->block_elements != 0) {
      throw std::runtime_error("tensor '" + info.name + "' in " + path + ": row length " +
                               std::to_string(info.dims[0]) + " is not a multiple of the " +
                               traits->name + " block size");
    }
    if (info.offset > file.size_bytes()) {
      throw std::runtime_error("tensor '" + info.name + "' in " + path +
                               " starts past the end of the file (truncated?)");
    }
    tensor.data = gguf_->data_section() + info.offset;
    add_tensor(std::move(tensor), file.size_bytes(), file.data());
  }
}

std::vector<float> GgufCheckpoint::read_float(const std::string& name,
                                              const std::vector<int64_t>& expected_shape) const {
  std::vector<float> values = Checkpoint::read_float(name, expected_shape);
  const bool is_q = name.size() > 13 && name.find("self_attn.q_proj.") != std::string::npos;
  const bool is_k = name.size() > 13 && name.find("self_attn.k_proj.") != std::string::npos;
  if (!rope_rows_permuted_ || (!is_q && !is_k)) return values;
  // Converter: rows of head h were reordered as (h, 2, hd/2) -> (h, hd/2, 2). Undo it:
  // HF row h*hd + half*(hd/2) + j  <-  file row h*hd + 2*j + half.
  const TensorRef& tensor = get(name);
  const int64_t num_rows = tensor.shape[0];
  const int64_t row_length = tensor.num_elements() / num_rows;
  const int64_t heads = is_q ? num_heads_ : num_kv_heads_;
  if (heads <= 0 || num_rows % heads != 0 || (num_rows / heads) % 2 != 0) {
    throw std::runtime_error("tensor '" + name + "' in " + path_ + ": " + std::to_string(num_rows) +
                             " rows do not split into " + std::to_string(heads) +
                             " heads of even size");
  }
  const int64_t head_dim = num_rows / heads;
  std::vector<float> out(values.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t j = 0; j < head_dim / 2; ++j) {
        const int64_t hf_row = h * head_dim + half * (head_dim / 2) + j;
        const int64_t file_row = h * head_dim + 2 * j + half;
        std::memcpy(&out[hf_row * row_length], &values[file_row * row_length],
                    static_cast<size_t>(row_length) * sizeof(float));
      }
    }
  }
  return out;
}

}  // namespace cadence
