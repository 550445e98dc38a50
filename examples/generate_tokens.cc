// Greedy generation from token ids with the C++ core alone (no Python):
//
//   generate_tokens MODEL.gguf NUM_NEW_TOKENS TOKEN_ID [TOKEN_ID ...]
//
// prints the generated token ids, space-separated, on one line.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cadence/engine.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf NUM_NEW_TOKENS TOKEN_ID [TOKEN_ID ...]\n", argv[0]);
    return 2;
  }
  try {
    cadence::EngineConfig config;
    config.model_path = argv[1];
    config.weight_dtype =
        cadence::WeightDtype::kNative;  // keep the GGUF's quantized blocks (the int8 kernels)
    config.max_model_len = 2048;
    config.max_num_seqs = 4;
    auto engine = cadence::Engine::create(config);

    cadence::SamplingParams params;
    params.temperature = 0.0f;
    params.max_tokens = std::atoi(argv[2]);
    std::vector<int32_t> prompt;
    for (int i = 3; i < argc; ++i) prompt.push_back(std::atoi(argv[i]));
    engine->add_request("example", prompt, params);

    std::vector<int32_t> generated;
    while (engine->has_unfinished_requests()) {
      for (const cadence::RequestOutput& output : engine->step()) {
        generated.insert(generated.end(), output.new_token_ids.begin(), output.new_token_ids.end());
      }
    }
    for (size_t i = 0; i < generated.size(); ++i) {
      std::printf(i == 0 ? "%d" : " %d", generated[i]);
    }
    std::printf("\n");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
  return 0;
}
