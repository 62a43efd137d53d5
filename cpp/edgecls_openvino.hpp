// edgecls_openvino.hpp: an edgecls artifact run by OpenVINO's C++ runtime, with the spec it carries.
//
// OpenVinoClassifier opens what edgecls's Python OpenVINO backend opens and checks what it checks:
//   .xml (+ .bin): the spec from the IR's rt_info["edgecls.spec"], the .bin's sha256 against rt_info
//                  ["edgecls.weights_sha256"] (a pair from two exports is refused, not run);
//   .onnx:         the spec from the ONNX metadata_props (OpenVINO's reader exposes them as rt_info["framework"]);
//   either:        else the `<artifact>.json` sidecar (its recorded sha256, when present, must match the file), or an
//                  explicit spec file; then the spec must match the model (input shape and dtype, class count).
// It compiles as the Python Predictor does (LATENCY hint, f32 inference precision, `threads` inference threads) and
// runs one request at a time with start_async() + wait(). Preprocessing writes straight into the request's input
// tensor. Link openvino::runtime (cpp/CMakeLists.txt: target edgecls::openvino).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <openvino/openvino.hpp>

#include "edgecls.hpp"

namespace edgecls {

inline constexpr const char* kWeightsKey = "edgecls.weights_sha256";  // rt_info: sha256 of the .bin the .xml was saved with

namespace detail {
inline std::string with_suffix(const std::string& path, const std::string& suffix) {
    const auto dot = path.find_last_of('.');
    const auto slash = path.find_last_of('/');
    return (dot == std::string::npos || (slash != std::string::npos && dot < slash) ? path : path.substr(0, dot)) + suffix;
}
inline std::string ov_dtype(const ov::element::Type& t) {
    if (t == ov::element::f32) return "float32";
    if (t == ov::element::f16) return "float16";
    if (t == ov::element::u8) return "uint8";
    return t.get_type_name();
}
}  // namespace detail

class OpenVinoClassifier : public Classifier {
   public:
    explicit OpenVinoClassifier(const std::string& path, Options options = {}) : Classifier(path, options.post), opt_(std::move(options)) {
        const bool xml = detail::ends_with(path, ".xml"), onnx = detail::ends_with(path, ".onnx");
        if (!xml && !onnx)
            throw InputError(path + ": OpenVINO runs an edgecls .xml (with its .bin) or .onnx; export one with `edgecls export -f openvino`");
        if (!file_exists(path))
            throw ModelFileError("model file not found: " + path + "; check the path (edgecls export writes the model file and its .json "
                                 "sidecar side by side)");
        if (xml && !file_exists(detail::with_suffix(path, ".bin")))
            throw ModelFileError(path + " needs its weights file " + detail::with_suffix(path, ".bin") + " beside it; copy both files");
        try {
            model_ = core_.read_model(path);
        } catch (const std::exception& e) {
            throw ModelFileError("OpenVINO cannot read " + path + " (" + detail::one_line(e.what()) + "); the " +
                                 (xml ? ".xml/.bin pair" : "file") + " is truncated, corrupt or mismatched. Re-export it with `edgecls export`");
        }
        if (model_->inputs().size() != 1 || model_->outputs().size() != 1)
            throw ModelFileError(path + " has " + std::to_string(model_->inputs().size()) + " inputs and " +
                                 std::to_string(model_->outputs().size()) + " outputs; an edgecls classifier has one of each. Export it with edgecls");
        if (xml) check_weights();
        // .xml: edgecls stores the spec at the top of rt_info; .onnx: OpenVINO's ONNX reader puts metadata_props under "framework"
        spec_ = resolve_spec(path, opt_, rt_text(xml ? std::vector<std::string>{kSpecKey} : std::vector<std::string>{"framework", kSpecKey}),
                             path + " (embedded spec)");
        check_model();
        if (model_->input().get_partial_shape()[0].is_dynamic()) {  // a dynamic-batch export: a camera app runs one frame
            auto shape = model_->input().get_partial_shape();
            shape[0] = 1;
            model_->reshape(shape);
        }
        ov::AnyMap config{ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY),
                          // f32: on CPUs with bf16/AMX OpenVINO would otherwise compute in bf16 and move logits ~3%
                          ov::hint::inference_precision(ov::element::f32)};
        if (opt_.threads > 0) config.emplace(ov::inference_num_threads(opt_.threads));
        try {
            if (!opt_.cache_dir.empty()) core_.set_property(ov::cache_dir(opt_.cache_dir));
            compiled_ = core_.compile_model(model_, opt_.device, config);
            request_ = compiled_.create_infer_request();
        } catch (const std::exception& e) {
            throw ModelFileError("OpenVINO cannot compile " + path + " for " + opt_.device + ": " + detail::one_line(e.what()));
        }
        if (request_.get_input_tensor().get_byte_size() != input_bytes(spec_))
            throw SpecError(path + ": the model's input takes " + std::to_string(request_.get_input_tensor().get_byte_size()) +
                            " bytes, the spec's " + std::to_string(input_bytes(spec_)) + "; the spec belongs to another model");
    }

    ov::InferRequest& request() { return request_; }  // the runtime's own object, for what edgecls does not wrap

    void* input_data() override { return request_.get_input_tensor().data(); }

    std::vector<float> infer() override {
        try {
            request_.start_async();
            request_.wait();
        } catch (const std::exception& e) {
            throw InferenceError("OpenVINO failed to run " + path_ + ": " + detail::one_line(e.what()));
        }
        const ov::Tensor out = request_.get_output_tensor();
        const std::size_t n = out.get_size();
        if (out.get_element_type() == ov::element::f32) {
            const float* d = out.data<const float>();
            return {d, d + n};
        }
        if (out.get_element_type() == ov::element::f16) {
            const ov::float16* d = out.data<const ov::float16>();
            std::vector<float> v(n);
            for (std::size_t i = 0; i < n; ++i) v[i] = float(d[i]);
            return v;
        }
        throw InferenceError(path_ + " outputs " + out.get_element_type().get_type_name() + " logits; edgecls reads float32 or float16");
    }

   private:
    std::string rt_text(const std::vector<std::string>& key) const {
        if (!model_->has_rt_info(key)) return "";
        try {
            return model_->get_rt_info<std::string>(key);
        } catch (const std::exception&) {
            throw ModelFileError(path_ + ": its rt_info entry " + key.back() + " is not text; the file is corrupt. Re-export the model");
        }
    }

    // The .xml and .bin are published by two renames; the .xml records its .bin's checksum (exporters/openvino.py)
    void check_weights() const {
        const std::string want = rt_text({kWeightsKey});
        if (want.empty()) return;  // an IR not written by edgecls: nothing to check against
        const std::string bin = detail::with_suffix(path_, ".bin");
        if (file_sha256(bin) != want)
            throw ModelFileError(bin + " is not the weights file " + path_ + " was written with (checksum mismatch): the pair comes from two "
                                 "exports, e.g. one interrupted between its two renames. Re-export the model, or copy the .xml and .bin of one export together");
    }

    void check_model() const {
        const auto ps = model_->input().get_partial_shape();
        std::vector<std::int64_t> have;
        if (ps.rank().is_static())
            for (std::int64_t i = 0; i < ps.rank().get_length(); ++i) have.push_back(ps[i].is_static() ? ps[i].get_length() : -1);
        const auto out = model_->output().get_partial_shape();
        std::int64_t classes = -1;
        if (out.rank().is_static() && out.rank().get_length() > 0 && out[out.rank().get_length() - 1].is_static())
            classes = out[out.rank().get_length() - 1].get_length();
        check_spec_matches(spec_, path_, have, detail::ov_dtype(model_->input().get_element_type()), classes);
    }

    Options opt_;
    ov::Core core_;
    std::shared_ptr<ov::Model> model_;
    ov::CompiledModel compiled_;
    ov::InferRequest request_;
};

}  // namespace edgecls
