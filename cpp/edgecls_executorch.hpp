// edgecls_executorch.hpp: an edgecls ExecuTorch program (.pte, XNNPACK) run by ExecuTorch's C++ runtime, with the
// spec it carries.
//
// The spec travels inside the program as the constant method `edgecls_spec` (the JSON; `labels` holds one label per
// line), else in the `<artifact>.pte.json` sidecar. As edgecls's Python backend does, the file's identifier is
// checked before ExecuTorch sees it, the program is loaded with the flatbuffer verifier over all of it
// (InternalConsistency), and the spec must match `forward`'s real input (shape, dtype) and output (class count).
// ExecuTorch's own log lines are kept (ExecuTorchClassifier::log()) and named in load errors instead of printed.
// Threads: the ExecuTorch wheel ships no header for its process-wide thread pool, which keeps its default size (the
// CPU's performance cores, what the Python backend uses when `threads` is not given).
// Link the libraries of the executorch wheel's CMake package (cpp/CMakeLists.txt: target edgecls::executorch).
#pragma once

#include <cctype>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/platform/platform.h>

#include "edgecls.hpp"

namespace edgecls {

inline constexpr const char* kSpecMethod = "edgecls_spec";  // exporters/executorch.py's constant methods
inline constexpr const char* kLabelsMethod = "labels";

namespace detail {
// ExecuTorch's log lines, kept instead of printed (a PAL hook: ExecuTorch's documented way to redirect them)
struct EtLog {
    std::mutex mu;
    std::vector<std::string> lines;
    static EtLog& get() {
        static EtLog log;
        return log;
    }
    static void emit(et_timestamp_t, et_pal_log_level_t, const char* file, const char*, size_t line, const char* message, size_t length) {
        auto& self = get();
        std::lock_guard<std::mutex> lock(self.mu);
        std::string text = std::string(file ? file : "?") + ":" + std::to_string(line) + ": " + std::string(message, length);
        if (self.lines.size() >= 64) self.lines.erase(self.lines.begin());
        self.lines.push_back(one_line(text, 200));
    }
    std::string last(std::size_t n) {
        std::lock_guard<std::mutex> lock(mu);
        std::string out;
        for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += (out.empty() ? "" : "; ") + lines[i];
        return out;
    }
};

inline void keep_executorch_logs() {
    static const bool done = executorch::runtime::register_pal(executorch::runtime::PalImpl::create(&EtLog::emit, __FILE__));
    (void)done;
}

inline std::string et_dtype(executorch::aten::ScalarType t) {
    switch (t) {
        case executorch::aten::ScalarType::Byte: return "uint8";
        case executorch::aten::ScalarType::Float: return "float32";
        case executorch::aten::ScalarType::Half: return "float16";
        case executorch::aten::ScalarType::Char: return "int8";
        default: return "another type";
    }
}
}  // namespace detail

class ExecuTorchClassifier : public Classifier {
   public:
    explicit ExecuTorchClassifier(const std::string& path, const Options& opt = {}) : Classifier(path, opt.post) {
        namespace et = executorch::runtime;
        detail::keep_executorch_logs();
        if (opt.threads > 0)
            throw InputError("threads: the ExecuTorch wheel's C++ headers do not expose its thread pool; leave threads out (the pool has "
                             "one thread per performance core)");
        if (opt.device != "CPU" && opt.device != "cpu")
            throw InputError("device " + opt.device + ": the ExecuTorch classifier runs XNNPACK on the CPU; leave the device out");
        if (!opt.cache_dir.empty()) throw InputError("cache_dir is for runtimes that compile on load (OpenVINO); leave it out for a .pte");
        check_header();
        module_ = std::make_unique<executorch::extension::Module>(path, executorch::extension::Module::LoadMode::File);
        // the flatbuffer verifier over the whole program before anything is used: a corrupt file is an error, not a crash
        if (module_->load(et::Program::Verification::InternalConsistency) != et::Error::Ok || module_->load_forward() != et::Error::Ok)
            throw ModelFileError("ExecuTorch cannot load " + path + " (" + why() + "); the file is truncated, corrupt or needs kernels this "
                                 "runtime lacks. Re-export it with `edgecls export -f executorch`");
        spec_ = resolve_spec(path, opt, embedded_spec(), path + " (embedded spec)");
        auto meta = module_->method_meta("forward");
        if (!meta.ok() || meta->num_inputs() != 1 || meta->num_outputs() < 1)
            throw ModelFileError(path + ": its forward method does not take one tensor; it is not an edgecls classifier. Re-export it");
        auto in = meta->input_tensor_meta(0);
        auto out = meta->output_tensor_meta(0);
        if (!in.ok() || !out.ok()) throw ModelFileError(path + ": forward's input or output is not a tensor; re-export the model");
        std::vector<std::int64_t> have(in->sizes().begin(), in->sizes().end());
        const auto osz = out->sizes();
        check_spec_matches(spec_, path, have, detail::et_dtype(in->scalar_type()), osz.empty() ? -1 : osz[osz.size() - 1]);
        buffer_.assign(input_bytes(spec_), 0);
        std::vector<executorch::aten::SizesType> sizes(in->sizes().begin(), in->sizes().end());
        input_ = executorch::extension::from_blob(buffer_.data(), sizes, in->scalar_type());
    }

    executorch::extension::Module& module() { return *module_; }  // the runtime's own object
    static std::string log(std::size_t n = 8) { return detail::EtLog::get().last(n); }  // ExecuTorch's last log lines

    void* input_data() override { return buffer_.data(); }

    std::vector<float> infer() override {
        auto result = module_->forward(input_);
        if (!result.ok() || result->empty() || !(*result)[0].isTensor())
            throw InferenceError("ExecuTorch failed to run " + path_ + " (" + why() + ")");
        const auto& t = (*result)[0].toTensor();
        if (t.scalar_type() != executorch::aten::ScalarType::Float)
            throw InferenceError(path_ + " outputs " + detail::et_dtype(t.scalar_type()) + " logits; edgecls reads float32");
        const float* d = t.const_data_ptr<float>();
        return {d, d + t.numel()};
    }

   private:
    std::string why() const {
        const std::string l = log(3);
        return l.empty() ? "no message from ExecuTorch" : l;
    }

    // ExecuTorch programs carry "ETnn" at byte 4; anything else stops here (a .tflite renamed, an empty file)
    void check_header() const {
        std::ifstream f(path_, std::ios::binary);
        if (!f)
            throw ModelFileError("model file not found: " + path_ + "; check the path (edgecls export writes the model file and its .json "
                                 "sidecar side by side)");
        char head[8] = {};
        f.read(head, 8);
        const bool et = f.gcount() == 8 && head[4] == 'E' && head[5] == 'T' && std::isdigit(static_cast<unsigned char>(head[6])) &&
                        std::isdigit(static_cast<unsigned char>(head[7]));
        if (!et)
            throw ModelFileError(path_ + (std::memcmp(head + 4, "TFL3", 4) == 0 ? " is a LiteRT/TFLite model (TFL3); rename it to .tflite"
                                                                                 : " is not an ExecuTorch program (no 'ETnn' identifier at byte 4)") +
                                 ". The file is truncated, corrupt or of another kind; re-export it with `edgecls export -f executorch`");
    }

    std::string embedded_spec() {
        auto names = module_->method_names();
        if (!names.ok() || !names->count(kSpecMethod)) return "";  // a .pte from elsewhere: the sidecar gives the spec
        auto r = module_->execute(kSpecMethod);
        if (!r.ok() || r->empty() || !(*r)[0].isString())
            throw ModelFileError(path_ + ": its embedded spec cannot be read (" + why() + "); the file is corrupt. Re-export it");
        const auto text = (*r)[0].toString();
        return std::string(text.data(), text.size());
    }

    std::unique_ptr<executorch::extension::Module> module_;
    std::vector<std::uint8_t> buffer_;
    executorch::extension::TensorPtr input_;
};

}  // namespace edgecls
