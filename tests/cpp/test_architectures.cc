// The architecture registry is the one list: the factory, the config check and the GGUF
// readers all answer from it, and each of its GGUF names has a tensor-name mapping.
#include <set>
#include <string>

#include "cadence/model_config.h"
#include "model/architectures.h"
#include "model/gguf_checkpoint.h"
#include "test_harness.h"

using namespace cadence;

TEST(registry_rows_are_complete_and_unique) {
  std::set<std::string> hf_names, gguf_names;
  for (const Architecture& row : architecture_table()) {
    CHECK(row.load != nullptr);
    CHECK(hf_names.insert(row.hf_name).second);
    CHECK(find_hf_architecture(row.hf_name) == &row);
    if (row.gguf_name != nullptr) {
      CHECK(gguf_names.insert(row.gguf_name).second);
      CHECK(find_gguf_architecture(row.gguf_name) == &row);
    }
  }
  CHECK(find_hf_architecture("MixtralForCausalLM") == nullptr);
  CHECK(find_gguf_architecture("mamba") == nullptr);
}

TEST(public_lists_are_the_registry) {
  const auto& table = architecture_table();
  const auto& names = ModelConfig::supported_architectures();
  const auto& info = architecture_registry();
  CHECK(names.size() == table.size() && info.size() == table.size());
  std::size_t num_gguf = 0;
  for (std::size_t i = 0; i < table.size(); ++i) {
    CHECK(names[i] == table[i].hf_name && info[i].hf_name == table[i].hf_name);
    CHECK(info[i].family == table[i].family);
    CHECK(info[i].gguf_name == (table[i].gguf_name ? table[i].gguf_name : ""));
    if (table[i].gguf_name != nullptr) {
      CHECK(gguf_supported_architectures().at(num_gguf++) == table[i].gguf_name);
    }
  }
  CHECK(gguf_supported_architectures().size() == num_gguf);
}

TEST(every_gguf_architecture_has_a_tensor_naming) {
  for (const std::string& arch : gguf_supported_architectures()) {
    CHECK(gguf_to_hf_tensor_name(arch, "token_embd.weight") == "model.embed_tokens.weight");
    CHECK(!gguf_to_hf_tensor_name(arch, "blk.0.attn_norm.weight").empty());
  }
  CHECK(gguf_to_hf_tensor_name("mamba", "token_embd.weight").empty());
}

TEST_MAIN()
