// The Engine. Long-running calls (create, step, compute_prompt_logits) release the GIL;
// the engine never calls back into Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "cadence/engine.h"

namespace py = pybind11;
using cadence::Engine;
using cadence::EngineConfig;
using cadence::EngineStats;
using cadence::FinishReason;
using cadence::RequestOutput;

void bind_engine(py::module_& m) {
  py::enum_<FinishReason>(m, "FinishReason")
      .value("NONE", FinishReason::kNone)
      .value("STOP", FinishReason::kStop)
      .value("LENGTH", FinishReason::kLength)
      .value("ABORT", FinishReason::kAbort);

  py::class_<cadence::TokenLogprobs>(m, "TokenLogprobs")
      .def_readonly("token_id", &cadence::TokenLogprobs::token_id)
      .def_readonly("logprob", &cadence::TokenLogprobs::logprob)
      .def_readonly("rank", &cadence::TokenLogprobs::rank)
      .def_readonly("top_token_ids", &cadence::TokenLogprobs::top_token_ids)
      .def_readonly("top_logprobs", &cadence::TokenLogprobs::top_logprobs);

  using cadence::BeamHypothesis;
  py::class_<BeamHypothesis>(m, "BeamHypothesis")
      .def_readonly("token_ids", &BeamHypothesis::token_ids)
      .def_readonly("logprobs", &BeamHypothesis::logprobs)
      .def_readonly("ranks", &BeamHypothesis::ranks)
      .def_readonly("cum_logprob", &BeamHypothesis::cum_logprob)
      .def_readonly("score", &BeamHypothesis::score)
      .def_readonly("finish_reason", &BeamHypothesis::finish_reason);

  py::class_<RequestOutput>(m, "RequestOutput")
      .def_readonly("request_id", &RequestOutput::request_id)
      .def_readonly("sequence_index", &RequestOutput::sequence_index)
      .def_readonly("new_token_ids", &RequestOutput::new_token_ids)
      .def_readonly("new_logprobs", &RequestOutput::new_logprobs)
      .def_readonly("prompt_logprobs", &RequestOutput::prompt_logprobs)
      .def_readonly("finished", &RequestOutput::finished)
      .def_readonly("finish_reason", &RequestOutput::finish_reason)
      .def_readonly("stop_token_id", &RequestOutput::stop_token_id)
      .def_readonly("beams", &RequestOutput::beams)
      .def_readonly("num_cached_tokens", &RequestOutput::num_cached_tokens);

  py::class_<EngineStats>(m, "EngineStats")
      .def_readonly("num_running", &EngineStats::num_running)
      .def_readonly("num_waiting", &EngineStats::num_waiting)
      .def_readonly("num_total_blocks", &EngineStats::num_total_blocks)
      .def_readonly("num_free_blocks", &EngineStats::num_free_blocks)
      .def_readonly("num_preemptions", &EngineStats::num_preemptions)
      .def_readonly("num_cached_blocks", &EngineStats::num_cached_blocks)
      .def_readonly("prefix_cache_queries", &EngineStats::prefix_cache_queries)
      .def_readonly("prefix_cache_hits", &EngineStats::prefix_cache_hits);

  using cadence::StepProfile;
  py::class_<StepProfile>(m, "StepProfile")
      .def_readonly("num_steps", &StepProfile::num_steps)
      .def_readonly("schedule_seconds", &StepProfile::schedule_seconds)
      .def_readonly("batch_seconds", &StepProfile::batch_seconds)
      .def_readonly("forward_seconds", &StepProfile::forward_seconds)
      .def_readonly("sampling_seconds", &StepProfile::sampling_seconds)
      .def_readonly("kernel_seconds", &StepProfile::kernel_seconds);

  py::class_<Engine, std::unique_ptr<Engine>>(m, "Engine")
      .def(py::init([](const EngineConfig& config) {
             py::gil_scoped_release release;
             return Engine::create(config);
           }),
           py::arg("config"))
      .def(
          "add_request",
          [](Engine& engine, const std::string& request_id,
             const std::vector<int32_t>& prompt_token_ids, const cadence::SamplingParams& params,
             const std::string& cache_salt) {
            return engine.add_request(request_id, prompt_token_ids, params, cache_salt) ==
                   cadence::AddRequestStatus::kOk;
          },
          py::arg("request_id"), py::arg("prompt_token_ids"), py::arg("params"),
          py::arg("cache_salt") = "",
          "Queues a request; False when the id is already in use. ValueError on bad input.")
      .def(
          "add_beam_request",
          [](Engine& engine, const std::string& request_id,
             const std::vector<int32_t>& prompt_token_ids, const cadence::BeamSearchParams& params,
             const std::string& cache_salt) {
            return engine.add_beam_request(request_id, prompt_token_ids, params, cache_salt) ==
                   cadence::AddRequestStatus::kOk;
          },
          py::arg("request_id"), py::arg("prompt_token_ids"), py::arg("params"),
          py::arg("cache_salt") = "",
          "Queues a beam search; False when the id is already in use. ValueError on bad input.")
      .def("abort_request", &Engine::abort_request, py::arg("request_id"))
      .def("abort_sequence", &Engine::abort_sequence, py::arg("request_id"),
           py::arg("sequence_index"))
      .def("step", &Engine::step, py::call_guard<py::gil_scoped_release>())
      .def("has_unfinished_requests", &Engine::has_unfinished_requests)
      .def("step_profile", &Engine::step_profile)
      .def("reset_step_profile", &Engine::reset_step_profile)
      .def("reset_prefix_cache", &Engine::reset_prefix_cache,
           "Forgets every cached prefix; returns the number of cached blocks freed.")
      .def(
          "compute_prompt_logits",
          [](Engine& engine, const std::vector<int32_t>& token_ids) {
            auto logits = std::make_unique<std::vector<float>>();
            {
              py::gil_scoped_release release;
              *logits = engine.compute_prompt_logits(token_ids);
            }
            const auto vocab_size = static_cast<py::ssize_t>(engine.model_config().vocab_size);
            const auto num_rows = static_cast<py::ssize_t>(token_ids.size());
            float* data = logits->data();
            py::capsule owner(logits.release(),
                              [](void* p) { delete static_cast<std::vector<float>*>(p); });
            return py::array_t<float>({num_rows, vocab_size}, data, owner);
          },
          py::arg("token_ids"),
          "Logits [len(token_ids), vocab_size] for every position of one prompt.")
      .def_property_readonly("model_config", &Engine::model_config)
      .def_property_readonly("config", &Engine::config)
      .def("stats", &Engine::stats)
      .def_property_readonly("kv_cache_bytes", &Engine::kv_cache_bytes)
      .def_property_readonly("kv_cache_dtype", &Engine::kv_cache_dtype)
      .def_property_readonly("weight_bytes", &Engine::weight_bytes)
      .def_property_readonly("isa", &Engine::isa)
      .def_property_readonly("max_beam_width", &Engine::max_beam_width)
      .def("check_invariants", &Engine::check_invariants);
}
