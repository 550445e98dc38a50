#include "model/gguf_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

#include "model/architectures.h"

namespace cadence {

namespace {

using NameTable = std::map<std::string, std::string>;

// How one GGUF architecture of the registry (architectures.cc) names its tensors: the HF
// names (as llama.cpp's convert_hf_to_gguf.py writes them) and whether its q/k rows are
// permuted. A C++ test checks every GGUF name of the registry has one.
struct GgufArchitecture {
  const char* name;  // general.architecture
  bool rope_rows_permuted;
  const NameTable* layer_names;  // "blk.N.<key>" -> "model.layers.N.<value>"
};

// The Llama block; Qwen2 shares it (with q/k/v biases, which keep their ".bias" suffix).
const NameTable kLlamaLayer = {
    {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

NameTable with(NameTable table, const NameTable& extra) {
  table.insert(extra.begin(), extra.end());
  return table;
}

// Qwen3: the Llama block plus per-head q/k RMSNorm weights.
const NameTable kQwen3Layer =
    with(kLlamaLayer, {{"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"}});

// Phi-3: fused projections. `ffn_up` is HF's gate_up_proj unchanged ([gate | up] rows).
const NameTable kPhi3Layer = {
    {"attn_norm", "input_layernorm"},    {"attn_qkv", "self_attn.qkv_proj"},
    {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_up", "mlp.gate_up_proj"},      {"ffn_down", "mlp.down_proj"},
};

// Gemma 2: four norms per block. `ffn_norm` is the norm *before* the MLP here, and
// `post_attention_norm` the one after attention.
const NameTable kGemma2Layer = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
    {"post_ffw_norm", "post_feedforward_layernorm"},
};

const std::vector<GgufArchitecture>& gguf_namings() {
  static const std::vector<GgufArchitecture> kNamings = {
      {"llama", true, &kLlamaLayer},    {"qwen2", false, &kLlamaLayer},
      {"qwen3", false, &kQwen3Layer},   {"phi3", false, &kPhi3Layer},
      {"gemma2", false, &kGemma2Layer},
  };
  return kNamings;
}

// The naming of a GGUF architecture the registry supports; nullptr otherwise.
const GgufArchitecture* find_architecture(const std::string& arch) {
  if (find_gguf_architecture(arch) == nullptr) return nullptr;
  for (const GgufArchitecture& entry : gguf_namings()) {
    if (arch == entry.name) return &entry;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& gguf_supported_architectures() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const Architecture& row : architecture_table()) {
      if (row.gguf_name != nullptr) names.emplace_back(row.gguf_name);
    }
    return names;
  }();
  return kNames;
}

std::string supported_gguf_architecture(const GgufFile& gguf) {
  const std::string arch = gguf.get_string("general.architecture");
  if (find_architecture(arch) == nullptr) {
    std::string names;
    for (const std::string& name : gguf_supported_architectures()) {
      names += (names.empty() ? "" : ", ") + name;
    }
    throw std::runtime_error(gguf.path() + ": GGUF architecture '" + arch +
                             "' is not supported (supported: " + names + ")");
  }
  return arch;
}

std::string gguf_to_hf_tensor_name(const std::string& arch, const std::string& gguf_name) {
  static const NameTable kGlobal = {
      {"token_embd", "model.embed_tokens"},
      {"output_norm", "model.norm"},
      {"output", "lm_head"},
  };
  const GgufArchitecture* architecture = find_architecture(arch);
  if (architecture == nullptr) return "";
  const size_t suffix_dot = gguf_name.rfind('.');
  if (suffix_dot == std::string::npos) return "";
  const std::string suffix = gguf_name.substr(suffix_dot);  // ".weight" / ".bias"
  const std::string stem = gguf_name.substr(0, suffix_dot);
  if (stem.rfind("blk.", 0) == 0) {
    const size_t layer_end = stem.find('.', 4);
    if (layer_end == std::string::npos) return "";
    const std::string layer = stem.substr(4, layer_end - 4);
    auto it = architecture->layer_names->find(stem.substr(layer_end + 1));
    if (it == architecture->layer_names->end()) return "";
    return "model.layers." + layer + "." + it->second + suffix;
  }
  auto it = kGlobal.find(stem);
  return it == kGlobal.end() ? "" : it->second + suffix;
}

GgufCheckpoint::GgufCheckpoint(const std::string& path)
    : Checkpoint(path), gguf_(std::make_unique<GgufFile>(path)) {
  files_.push_back(gguf_->shared_file());
  const std::string arch = supported_gguf_architecture(*gguf_);
  rope_rows_permuted_ = find_architecture(arch)->rope_rows_permuted;
  if (rope_rows_permuted_) {
    num_heads_ = gguf_->get_int(arch + ".attention.head_count");
    num_kv_heads_ = num_heads_;
    if (gguf_->find(arch + ".attention.head_count_kv") != nullptr) {
      num_kv_heads_ = gguf_->get_int(arch + ".attention.head_count_kv");
    }
  }
  const MappedFile& file = gguf_->file();
  for (const GgufTensorInfo& info : gguf_->tensor_infos()) {
    const std::string hf_name = gguf_to_hf_tensor_name(arch, info.name);
    if (hf_name.empty()) continue;  // e.g. rope_factors_*: read by the config, not a weight
    TensorRef tensor = gguf_tensor_ref(*gguf_, info);
    tensor.name = hf_name;
    add_tensor(std::move(tensor), file.size_bytes(), file.data());
  }
}

TensorRef gguf_tensor_ref(const GgufFile& gguf, const GgufTensorInfo& info) {
  const std::string where = "tensor '" + info.name + "' in " + gguf.path();
  const TensorTypeTraits* traits = find_tensor_type(info.type_id);
  if (traits == nullptr) {
    throw std::runtime_error(
        where + " has type " + describe_ggml_type(info.type_id) +
        ", which cadence cannot read (readable types: " + supported_tensor_type_names() + ")");
  }
  if (info.dims[0] % traits->block_elements != 0) {
    throw std::runtime_error(where + ": row length " + std::to_string(info.dims[0]) +
                             " is not a multiple of the " + traits->name + " block size " +
                             std::to_string(traits->block_elements));
  }
  const auto type = static_cast<TensorType>(info.type_id);
  const auto num_bytes = static_cast<uint64_t>(tensor_bytes(type, info.num_elements));
  // Unsigned arithmetic in this order cannot overflow: data_offset <= file size (GgufFile).
  const uint64_t data_bytes = gguf.file().size_bytes() - gguf.data_offset_bytes();
  if (info.offset > data_bytes || num_bytes > data_bytes - info.offset) {
    throw std::runtime_error(where + ": bytes [" + std::to_string(info.offset) + ", " +
                             std::to_string(info.offset + num_bytes) +
                             ") of the data section lie past the end of the file (which has " +
                             std::to_string(data_bytes) + " data bytes; truncated?)");
  }
  TensorRef tensor;
  tensor.name = info.name;
  tensor.source_name = info.name;
  tensor.type = type;
  tensor.shape.assign(info.dims.rbegin(), info.dims.rend());
  tensor.data = gguf.data_section() + info.offset;
  return tensor;
}

FloatTensor read_gguf_tensor(const GgufFile& gguf, const std::string& gguf_name) {
  for (const GgufTensorInfo& info : gguf.tensor_infos()) {
    if (info.name != gguf_name) continue;
    const TensorRef tensor = gguf_tensor_ref(gguf, info);
    FloatTensor out;
    out.shape = tensor.shape;
    out.values.resize(static_cast<size_t>(info.num_elements));
    tensor_type_traits(tensor.type).to_float(tensor.data, out.values.data(), info.num_elements);
    return out;
  }
  throw std::runtime_error("tensor '" + gguf_name + "' not found in " + gguf.path());
}

FloatTensor read_gguf_tensor(const std::string& path, const std::string& gguf_name) {
  return read_gguf_tensor(GgufFile(path), gguf_name);
}

std::vector<int64_t> GgufCheckpoint::hf_row_sources(const std::string& name) const {
  const bool is_q = name.size() > 13 && name.find("self_attn.q_proj.") != std::string::npos;
  const bool is_k = name.size() > 13 && name.find("self_attn.k_proj.") != std::string::npos;
  if (!rope_rows_permuted_ || (!is_q && !is_k)) return {};
  // Converter: rows of head h were reordered as (h, 2, hd/2) -> (h, hd/2, 2). Undo it:
  // HF row h*hd + half*(hd/2) + j  <-  file row h*hd + 2*j + half.
  const TensorRef& tensor = get(name);
  const int64_t num_rows = tensor.shape[0];
  const int64_t heads = is_q ? num_heads_ : num_kv_heads_;
  if (heads <= 0 || num_rows % heads != 0 || (num_rows / heads) % 2 != 0) {
    throw std::runtime_error("tensor '" + name + "' in " + path_ + ": " + std::to_string(num_rows) +
                             " rows do not split into " + std::to_string(heads) +
                             " heads of even size");
  }
  const int64_t head_dim = num_rows / heads;
  std::vector<int64_t> sources(static_cast<size_t>(num_rows));
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t j = 0; j < head_dim / 2; ++j) {
        sources[h * head_dim + half * (head_dim / 2) + j] = h * head_dim + 2 * j + half;
      }
    }
  }
  return sources;
}

namespace {

// values[r] <- values[sources[r]] for rows of row_length elements.
template <class T>
void gather_rows(std::vector<T>& values, const std::vector<int64_t>& sources, int64_t row_length) {
  if (sources.empty()) return;
  std::vector<T> out(values.size());
  for (size_t r = 0; r < sources.size(); ++r) {
    std::copy_n(values.begin() + sources[r] * row_length, row_length,
                out.begin() + static_cast<int64_t>(r) * row_length);
  }
  values = std::move(out);
}

}  // namespace

std::vector<float> GgufCheckpoint::read_float(const std::string& name,
                                              const std::vector<int64_t>& expected_shape) const {
  std::vector<float> values = Checkpoint::read_float(name, expected_shape);
  const std::vector<int64_t> sources = hf_row_sources(name);
  if (!sources.empty()) {
    gather_rows(values, sources, get(name).num_elements() / get(name).shape[0]);
  }
  return values;
}

kernels::QuantizedRows GgufCheckpoint::read_codes(
    const std::string& name, const std::vector<int64_t>& expected_shape) const {
  kernels::QuantizedRows rows = Checkpoint::read_codes(name, expected_shape);
  const std::vector<int64_t> sources = hf_row_sources(name);
  gather_rows(rows.codes, sources, rows.num_cols);
  gather_rows(rows.scales, sources, rows.blocks_per_row());
  gather_rows(rows.mins, sources, rows.blocks_per_row());
  return rows;
}

}  // namespace cadence
