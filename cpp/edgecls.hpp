// edgecls.hpp: an edgecls artifact's spec read and honoured in C++17, header-only.
//
// What Python's edgecls.runtime does for one image, with the same rules (edgecls/runtime/spec.py, preprocess.py,
// scores.py, predictor.py); tests/test_cpp.py holds the two to each other on real photos and video frames:
//   Spec::parse       the spec JSON (an artifact's metadata slot, or its `<artifact>.json` sidecar), validated like
//                     ModelSpec.from_json: schema version, types, bounds, cross-field rules. Bad text is a SpecError.
//   pixels()          crop/resize exactly as the Predictor's OpenCV path (preprocess.fast_pixels): the crop box in
//                     source pixels, 2x INTER_AREA steps, one last resize, channel order fixed on the small result.
//   to_input()        uint8 pixels -> the artifact's input tensor (uint8 NHWC/NCHW for graphs that normalize
//                     themselves, else float32/float16 (pixel/255 - mean)/std, in numpy's float32 order of operations).
//   postprocess()     softmax(logits / temperature), top-k (ties by lower index), open-set rejection ("unknown")
//                     when the spec has a threshold, multi-label sigmoid thresholds.
//   Classifier        what every runtime's classifier does with a frame (classify = preprocess, infer, postprocess).
// Runtimes: edgecls_openvino.hpp (OpenVINO .xml, and .onnx through OpenVINO), edgecls_executorch.hpp (ExecuTorch .pte).
// The spec's schema is published as edgecls/runtime/spec.schema.json.
//
// Needs: nlohmann/json >= 3.9 (Debian nlohmann-json3-dev), OpenCV core+imgproc (libopencv-dev), OpenSSL libcrypto
// (libssl-dev: sha256 of model files, the checks edgecls's Python runtime makes). Every error raised on purpose is
// an edgecls::Error subclass whose message is one line saying what was wrong and what to do.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <openssl/evp.h>

namespace edgecls {

inline constexpr int kSchemaVersion = 1;                  // spec.SCHEMA_VERSION this reader implements
inline constexpr const char* kSpecKey = "edgecls.spec";   // metadata key every format with a slot stores the spec under
inline constexpr const char* kUnknown = "unknown";        // the label of an image rejected by the open-set threshold
// spec.py's bounds: a hostile or corrupt spec cannot make the reader allocate without limit
inline constexpr std::size_t kMaxSpecBytes = 16u << 20;
inline constexpr std::size_t kMaxLabels = 100000;
inline constexpr std::size_t kMaxLabelChars = 512;
inline constexpr int kMaxSide = 8192;
inline constexpr int kMaxBatch = 65536;
inline constexpr int kMaxDepth = 64;  // JSON nesting (spec.py allows 16 inside params/metrics, a few levels above)
inline constexpr long long kMaxPixels = 100000000;  // images.MAX_PIXELS

// --- errors: the Python runtime's types, one line each --------------------------------------------------------
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct SpecError : Error {  // the spec is missing, unreadable, from a newer edgecls, or belongs to another model
    using Error::Error;
};
struct ModelFileError : Error {  // the model file is missing, truncated, corrupt or mismatched
    using Error::Error;
};
struct InputError : Error {  // an image or option the caller passed is not usable
    using Error::Error;
};
struct InferenceError : Error {  // the runtime failed or produced NaN/inf
    using Error::Error;
};

namespace detail {
// A runtime's own message on one line, shortened: errors here are printed as one line by apps.
inline std::string one_line(std::string_view text, std::size_t limit = 300) {
    std::string out;
    for (char c : text) {
        if (out.size() >= limit) {
            out += "...";
            break;
        }
        out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// Python's round(): nearest integer, ties to even (std::nearbyint in the default rounding mode; std::round would
// take ties away from zero and move a crop box by one pixel where Python does not).
inline long long py_round(double x) { return static_cast<long long>(std::nearbyint(x)); }
}  // namespace detail

// --- the spec ---------------------------------------------------------------------------------------------------
struct InputSpec {
    int height = 224, width = 224, channels = 3;
    std::string layout = "NCHW";  // NCHW | NHWC
    std::string dtype = "float32";  // float32 | float16 | uint8 (raw pixels into a graph that normalizes them)
    bool normalized_in_graph = false;
    int batch = 1;  // 0: dynamic batch

    std::vector<std::int64_t> shape() const {
        std::int64_t b = batch ? batch : 1;
        if (layout == "NCHW") return {b, channels, height, width};
        return {b, height, width, channels};
    }
    std::size_t elements() const { return std::size_t(height) * std::size_t(width) * std::size_t(channels); }
};

struct Preprocess {
    std::string resize_mode = "center_crop";  // center_crop | stretch
    double crop_pct = 0.875;
    std::string interpolation = "bilinear";  // nearest | bilinear | bicubic | area
    std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
    std::string color = "RGB";  // the model's channel order
};

struct OpenSet {
    std::string score;  // msp | max_logit | energy
    double threshold = 0.0;
};

struct Spec {
    std::string arch;
    std::vector<std::string> labels;
    InputSpec input;
    Preprocess preprocess;
    double temperature = 1.0;
    int schema_version = kSchemaVersion;
    std::optional<OpenSet> open_set;
    std::string task = "multiclass";  // multiclass | multilabel
    std::string target_cpu;           // x86-vnni | x86-avx2 | arm64 for INT8 builds; empty when not recorded
    std::vector<double> thresholds;   // multilabel: one per label (0.5 each when the spec has none)
    nlohmann::json artifact = nlohmann::json::object();  // format-specific facts: format, precision, sha256...

    bool multilabel() const { return task == "multilabel"; }
    std::size_t num_classes() const { return labels.size(); }

    // Validate and read spec JSON text; `where` names its source in errors (a file, "rt_info of model.xml").
    static Spec parse(std::string_view text, const std::string& where);
    static Spec from_file(const std::string& path);
};

namespace detail {
using json = nlohmann::json;

constexpr const char* kFix = "fix that field (in the sidecar JSON, or where the spec is built) or re-export the model with edgecls";

struct Reader {
    std::string where;

    [[noreturn]] void fail(const std::string& path, const std::string& what) const {
        throw SpecError(where + ": " + path + " " + what + ". To fix: " + kFix);
    }
    static const char* kind(const json& v) {
        switch (v.type()) {
            case json::value_t::null: return "null";
            case json::value_t::boolean: return "a boolean";
            case json::value_t::string: return "a string";
            case json::value_t::array: return "an array";
            case json::value_t::object: return "an object";
            case json::value_t::number_float: return "a float";
            default: return "an integer";
        }
    }
    void only_known(const json& obj, const std::string& path, std::initializer_list<const char*> known) const {
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            bool ok = std::any_of(known.begin(), known.end(), [&](const char* k) { return it.key() == k; });
            if (!ok) fail(path, "has the unknown field `" + one_line(it.key(), 80) + "` (misspelt, or written by a newer edgecls)");
        }
    }
    const json& object(const json& v, const std::string& path) const {
        if (!v.is_object()) fail(path, std::string("must be an object, got ") + kind(v));
        return v;
    }
    long long integer(const json& v, const std::string& path, long long lo, long long hi) const {
        long long x;
        if (v.is_number_unsigned()) {
            auto u = v.get<std::uint64_t>();
            if (u > std::uint64_t(hi)) fail(path, "is " + std::to_string(u) + ", out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
            x = static_cast<long long>(u);
        } else if (v.is_number_integer()) {
            x = v.get<long long>();
        } else {
            fail(path, std::string("must be an integer, got ") + kind(v));
        }
        if (x < lo || x > hi) fail(path, "is " + std::to_string(x) + ", out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return x;
    }
    // bounds as spec.py states them: lo/hi inclusive unless the flag says exclusive
    double number(const json& v, const std::string& path, double lo, double hi, bool lo_open = false, bool hi_open = false) const {
        if (!v.is_number()) fail(path, std::string("must be a number, got ") + kind(v));
        double x = v.get<double>();
        bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
        if (!ok) {
            std::ostringstream s;
            s << "is " << x << ", out of range " << (lo_open ? "(" : "[") << lo << ", " << hi << (hi_open ? ")" : "]");
            fail(path, s.str());
        }
        return x;
    }
    std::string choice(const json& v, const std::string& path, std::initializer_list<const char*> values) const {
        std::string all;
        for (const char* c : values) all += std::string(all.empty() ? "" : ", ") + c;
        if (!v.is_string()) fail(path, std::string("must be a string, got ") + kind(v) + "; choose one of " + all);
        auto s = v.get<std::string>();
        if (std::none_of(values.begin(), values.end(), [&](const char* c) { return s == c; }))
            fail(path, "is `" + one_line(s, 60) + "`; choose one of " + all);
        return s;
    }
    bool boolean(const json& v, const std::string& path) const {
        if (!v.is_boolean()) fail(path, std::string("must be true or false, got ") + kind(v));
        return v.get<bool>();
    }
    std::vector<double> numbers(const json& v, const std::string& path, std::size_t min_n, std::size_t max_n, double lo,
                                double hi, bool lo_open = false) const {
        if (!v.is_array()) fail(path, std::string("must be an array of numbers, got ") + kind(v));
        if (v.size() < min_n || v.size() > max_n)
            fail(path, "has " + std::to_string(v.size()) + " values; it takes " + std::to_string(min_n) + " to " + std::to_string(max_n));
        std::vector<double> out;
        out.reserve(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) out.push_back(number(v[i], path + "[" + std::to_string(i) + "]", lo, hi, lo_open));
        return out;
    }
};

// code points of a UTF-8 string (the parser has checked it is valid UTF-8): Python's len()
inline std::size_t code_points(const std::string& s) {
    return std::size_t(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

inline json parse_json(std::string_view text, const std::string& where) {
    if (text.size() > kMaxSpecBytes)
        throw SpecError(where + ": spec JSON is " + std::to_string(text.size()) + " bytes, over the " + std::to_string(kMaxSpecBytes) +
                        " limit; the file is corrupt or not an edgecls spec");
    // nlohmann's parser is iterative, so deep nesting cannot overflow the stack; the depth bound refuses
    // hostile files early, as spec.py does
    json::parser_callback_t depth_limit = [&where](int depth, json::parse_event_t, json&) {
        if (depth > kMaxDepth)
            throw SpecError(where + ": spec JSON is nested more than " + std::to_string(kMaxDepth) +
                            " levels deep; it is corrupt or hostile. Re-export the model");
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), depth_limit);
    } catch (const json::exception& e) {
        throw SpecError(where + ": spec is not valid JSON (" + one_line(e.what(), 200) +
                        "); the file is truncated or corrupt, re-export the model");
    }
}
}  // namespace detail

inline Spec Spec::parse(std::string_view text, const std::string& where) {
    using detail::json;
    const json root = detail::parse_json(text, where);
    detail::Reader r{where};
    if (!root.is_object())
        throw SpecError(where + ": a spec must be a JSON object, got " + r.kind(root) +
                        "; the file holds something else: export the model with edgecls, which writes its spec");
    // the version first, so a spec from a newer edgecls says so instead of failing on a field it added
    auto v = root.find("schema_version");
    if (v == root.end())
        throw SpecError(where + ": spec has no 'schema_version'; it was not written by edgecls. Export the model with edgecls");
    const bool newer = v->is_number_unsigned() ? v->get<std::uint64_t>() > std::uint64_t(kSchemaVersion)
                                               : v->is_number_integer() && v->get<long long>() > kSchemaVersion;
    if (newer)
        throw SpecError(where + ": spec schema_version " + v->dump() + " is newer than this edgecls C++ reader supports (" +
                        std::to_string(kSchemaVersion) + "); update cpp/edgecls.hpp to the edgecls release that wrote the model");
    r.only_known(root, "spec", {"arch", "labels", "input", "preprocess", "temperature", "metrics", "lineage", "artifact",
                                "schema_version", "open_set", "reference", "task", "thresholds", "target_cpu"});

    Spec s;
    s.schema_version = int(r.integer(*v, "spec.schema_version", 1, kSchemaVersion));
    auto need = [&](const char* key) -> const json& {
        auto it = root.find(key);
        if (it == root.end()) r.fail("spec", std::string("is incomplete: the required field `") + key + "` is missing");
        return *it;
    };
    const json& arch = need("arch");
    if (!arch.is_string() || arch.get<std::string>().empty() || detail::code_points(arch.get<std::string>()) > 256)
        r.fail("spec.arch", "must be a non-empty string of at most 256 characters");
    s.arch = arch.get<std::string>();

    const json& labels = need("labels");
    if (!labels.is_array()) r.fail("spec.labels", std::string("must be an array of strings, got ") + r.kind(labels));
    if (labels.empty() || labels.size() > kMaxLabels)
        r.fail("spec.labels", "has " + std::to_string(labels.size()) + " labels; it takes 1 to " + std::to_string(kMaxLabels));
    s.labels.reserve(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::string path = "spec.labels[" + std::to_string(i) + "]";
        if (!labels[i].is_string()) r.fail(path, std::string("must be a string, got ") + r.kind(labels[i]));
        std::string x = labels[i].get<std::string>();
        if (x.empty() || detail::code_points(x) > kMaxLabelChars)
            r.fail(path, "must hold 1 to " + std::to_string(kMaxLabelChars) + " characters");
        if (std::any_of(x.begin(), x.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
            throw SpecError(where + ": " + path + " holds a control character (newline, tab, escape...); labels are written one per line "
                            "and printed in terminals: remove it from the class name");
        s.labels.push_back(std::move(x));
    }
    if (std::set<std::string>(s.labels.begin(), s.labels.end()).size() != s.labels.size())
        throw SpecError(where + ": spec.labels has duplicates; each class needs a distinct name");

    if (auto it = root.find("input"); it != root.end()) {
        const json& in = r.object(*it, "spec.input");
        r.only_known(in, "spec.input", {"height", "width", "channels", "layout", "dtype", "normalized_in_graph", "batch"});
        auto& I = s.input;
        if (in.contains("height")) I.height = int(r.integer(in["height"], "spec.input.height", 1, kMaxSide));
        if (in.contains("width")) I.width = int(r.integer(in["width"], "spec.input.width", 1, kMaxSide));
        if (in.contains("channels")) {
            I.channels = int(r.integer(in["channels"], "spec.input.channels", 1, 3));
            if (I.channels == 2) r.fail("spec.input.channels", "is 2; choose one of 1 (grayscale), 3 (color)");
        }
        if (in.contains("layout")) I.layout = r.choice(in["layout"], "spec.input.layout", {"NCHW", "NHWC"});
        if (in.contains("dtype")) I.dtype = r.choice(in["dtype"], "spec.input.dtype", {"float32", "float16", "uint8"});
        if (in.contains("normalized_in_graph")) I.normalized_in_graph = r.boolean(in["normalized_in_graph"], "spec.input.normalized_in_graph");
        if (in.contains("batch")) I.batch = in["batch"].is_null() ? 0 : int(r.integer(in["batch"], "spec.input.batch", 1, kMaxBatch));
        if (I.normalized_in_graph != (I.dtype == "uint8"))
            throw SpecError(where + (I.normalized_in_graph
                                         ? ": input.normalized_in_graph=true needs input.dtype='uint8' (raw pixels go in); re-export the model or fix the sidecar JSON"
                                         : ": input.dtype='uint8' needs normalized_in_graph=true: uint8 goes only as raw pixels into a graph that "
                                           "normalizes them itself; re-export the model or fix the sidecar JSON"));
    }
    if (auto it = root.find("preprocess"); it != root.end()) {
        const json& pre = r.object(*it, "spec.preprocess");
        r.only_known(pre, "spec.preprocess", {"resize_mode", "crop_pct", "interpolation", "mean", "std", "color"});
        auto& P = s.preprocess;
        if (pre.contains("resize_mode")) P.resize_mode = r.choice(pre["resize_mode"], "spec.preprocess.resize_mode", {"center_crop", "stretch"});
        if (pre.contains("crop_pct")) P.crop_pct = r.number(pre["crop_pct"], "spec.preprocess.crop_pct", 0.0, 1.0, true);
        if (pre.contains("interpolation"))
            P.interpolation = r.choice(pre["interpolation"], "spec.preprocess.interpolation", {"nearest", "bilinear", "bicubic", "area"});
        if (pre.contains("mean")) P.mean = r.numbers(pre["mean"], "spec.preprocess.mean", 1, 3, -1000.0, 1000.0);
        if (pre.contains("std")) P.std = r.numbers(pre["std"], "spec.preprocess.std", 1, 3, 0.0, 1000.0, true);
        if (pre.contains("color")) P.color = r.choice(pre["color"], "spec.preprocess.color", {"RGB", "BGR"});
        if (P.mean.size() != P.std.size())
            throw SpecError(where + ": preprocess.mean and std need the same length (one value per channel); fix the sidecar JSON or re-export");
    }
    if (s.preprocess.mean.size() != std::size_t(s.input.channels))
        throw SpecError(where + ": preprocess.mean has " + std::to_string(s.preprocess.mean.size()) + " values but input.channels=" +
                        std::to_string(s.input.channels) + "; give one mean/std per input channel");
    if (auto it = root.find("temperature"); it != root.end()) s.temperature = r.number(*it, "spec.temperature", 0.0, 1e4, true);
    for (const char* key : {"metrics", "artifact"})
        if (auto it = root.find(key); it != root.end()) {
            r.object(*it, std::string("spec.") + key);
            if (it->size() > 1000) r.fail(std::string("spec.") + key, "has more than 1000 entries");
        }
    if (auto it = root.find("artifact"); it != root.end()) s.artifact = *it;
    if (auto it = root.find("lineage"); it != root.end() && !it->is_array()) r.fail("spec.lineage", std::string("must be an array, got ") + r.kind(*it));
    if (auto it = root.find("reference"); it != root.end() && !it->is_null()) r.object(*it, "spec.reference");
    if (auto it = root.find("task"); it != root.end()) s.task = r.choice(*it, "spec.task", {"multiclass", "multilabel"});
    // the CPU class an INT8 build was made for: informational here (the runtime picks its kernels), checked as Python does
    if (auto it = root.find("target_cpu"); it != root.end() && !it->is_null())
        s.target_cpu = r.choice(*it, "spec.target_cpu", {"x86-vnni", "x86-avx2", "arm64"});
    if (auto it = root.find("open_set"); it != root.end() && !it->is_null()) {
        const json& os = r.object(*it, "spec.open_set");
        r.only_known(os, "spec.open_set", {"score", "threshold", "coverage", "n"});
        if (!os.contains("score") || !os.contains("threshold"))
            r.fail("spec.open_set", "is incomplete: it needs `score` and `threshold`");
        OpenSet o;
        o.score = r.choice(os["score"], "spec.open_set.score", {"msp", "max_logit", "energy"});
        o.threshold = r.number(os["threshold"], "spec.open_set.threshold", -1e6, 1e6);
        if (os.contains("coverage")) r.number(os["coverage"], "spec.open_set.coverage", 0.0, 1.0, true, true);
        if (os.contains("n")) r.integer(os["n"], "spec.open_set.n", 0, std::numeric_limits<long long>::max());
        if (o.score == "msp" && !(o.threshold >= 0.0 && o.threshold <= 1.0))
            throw SpecError(where + ": open_set.threshold is out of range for score 'msp' (a probability): it must lie in [0, 1]; "
                            "refit it (edgecls fit-reference) or fix the sidecar JSON");
        s.open_set = o;
    }
    if (auto it = root.find("thresholds"); it != root.end() && !it->is_null()) {
        s.thresholds = r.numbers(*it, "spec.thresholds", 1, kMaxLabels, 0.0, 1.0);
        if (!s.multilabel())
            throw SpecError(where + ": spec.thresholds are per-label decision thresholds of a multi-label model, and this spec's task is "
                            "'multiclass': remove thresholds, or set task='multilabel'");
        if (s.thresholds.size() != s.labels.size())
            throw SpecError(where + ": spec.thresholds has " + std::to_string(s.thresholds.size()) + " values for " +
                            std::to_string(s.labels.size()) + " labels; give one threshold in [0, 1] per label, in label order");
    }
    if (s.multilabel() && s.thresholds.empty()) s.thresholds.assign(s.labels.size(), 0.5);
    if (s.multilabel() && s.open_set)
        throw SpecError(where + ": open_set rejection scores softmax outputs of a single-label model; a multi-label model answers "
                        "'none of the labels' by itself: remove open_set");
    return s;
}

inline std::string read_text_file(const std::string& path, std::size_t limit, const char* what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw ModelFileError(std::string(what) + " not found or unreadable: " + path + "; check the path");
    f.seekg(0, std::ios::end);
    auto size = f.tellg();
    if (size < 0) throw ModelFileError(std::string(what) + " " + path + " cannot be read; check the file");
    if (std::size_t(size) > limit)
        throw SpecError(path + ": spec JSON is " + std::to_string(size) + " bytes, over the " + std::to_string(limit) +
                        " limit; the file is corrupt or not an edgecls spec");
    std::string text(std::size_t(size), '\0');
    f.seekg(0);
    f.read(text.data(), size);
    return text;
}

inline Spec Spec::from_file(const std::string& path) { return parse(read_text_file(path, kMaxSpecBytes, "spec file"), path); }

// `<artifact>.json`: the spec every edgecls export writes beside the model, whatever the format
inline std::string sidecar_path(const std::string& artifact) { return artifact + ".json"; }

inline bool file_exists(const std::string& path) { return std::ifstream(path, std::ios::binary).good(); }

inline std::optional<Spec> read_sidecar(const std::string& artifact) {
    const std::string side = sidecar_path(artifact);
    if (!file_exists(side)) return std::nullopt;
    return Spec::from_file(side);
}

// sha256 of a file, hex: an OpenVINO .xml records its .bin's, a sidecar-only format's sidecar records the file's
inline std::string file_sha256(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw ModelFileError("cannot read " + path + " to check its checksum; check the path and permissions");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw Error("OpenSSL could not start a sha256 digest");
    std::vector<char> buf(1 << 20);
    while (f) {
        f.read(buf.data(), std::streamsize(buf.size()));
        if (f.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), std::size_t(f.gcount()));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &n);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

// A sidecar carries the model file's checksum when the format has no slot of its own (export records it): a sidecar
// from another export is refused, not trusted (predictor._resolve_spec).
inline void check_sidecar_belongs(const Spec& side, const std::string& artifact) {
    auto it = side.artifact.find("sha256");
    if (it != side.artifact.end() && it->is_string() && file_sha256(artifact) != it->get<std::string>())
        throw ModelFileError(sidecar_path(artifact) + " describes another build than " + artifact +
                             " (checksum mismatch): the pair comes from two exports. Copy both files of one export, or re-export the model");
}

// --- preprocessing: preprocess.py's fast path, rule for rule ------------------------------------------------------
enum class Order { RGB, BGR };

struct Box {
    int top, left, bottom, right;
};

// Size the whole picture is scaled to before cropping (torchvision Resize semantics): preprocess.resized_size
inline std::pair<int, int> resized_size(int h, int w, const Preprocess& pre, const InputSpec& in) {
    if (pre.resize_mode == "stretch") return {in.height, in.width};
    const long long th = (long long)std::floor(in.height / pre.crop_pct), tw = (long long)std::floor(in.width / pre.crop_pct);
    if (th == tw)  // the shorter side becomes th, the longer keeps the aspect (truncated)
        return h <= w ? std::pair<int, int>{int(th), int(double(th * w) / h)} : std::pair<int, int>{int(double(th * h) / w), int(th)};
    const double s = std::max(double(th) / h, double(tw) / w);
    return {int(std::max(th, detail::py_round(h * s))), int(std::max(tw, detail::py_round(w * s)))};
}

// (top, left, bottom, right) of the source pixels that end up in the model input: preprocess.source_box
inline Box source_box(int h, int w, const Preprocess& pre, const InputSpec& in) {
    if (pre.resize_mode == "stretch") return {0, 0, h, w};
    auto [rh, rw] = resized_size(h, w, pre, in);
    const long long top = detail::py_round((rh - in.height) / 2.0), left = detail::py_round((rw - in.width) / 2.0);
    const double sy = double(h) / rh, sx = double(w) / rw;
    const long long y0 = detail::py_round(top * sy), x0 = detail::py_round(left * sx);
    const long long y1 = std::min<long long>(h, detail::py_round((top + in.height) * sy));
    const long long x1 = std::min<long long>(w, detail::py_round((left + in.width) * sx));
    return {int(y0), int(x0), int(std::max(y1, y0 + 1)), int(std::max(x1, x0 + 1))};
}

inline void check_image(const cv::Mat& img, int channels) {
    if (img.empty() || img.rows == 0 || img.cols == 0) throw InputError("the image is empty; pass a decoded, non-empty frame");
    if (img.depth() != CV_8U)
        throw InputError("the image has OpenCV depth " + std::to_string(img.depth()) +
                         "; edgecls expects 8-bit pixels: convert it first (e.g. img.convertTo(out, CV_8U, 255.0/65535))");
    if ((long long)img.rows * img.cols > kMaxPixels)
        throw InputError("the image has " + std::to_string(img.rows) + "x" + std::to_string(img.cols) + " pixels, over the " +
                         std::to_string(kMaxPixels) + " limit; downscale it first");
    const int c = img.channels();
    if (c == 4) throw InputError("the image has 4 channels (alpha); drop it first: cv::cvtColor(img, out, cv::COLOR_BGRA2BGR)");
    if (channels == 3 && c != 3)
        throw InputError("the image has " + std::to_string(c) + " channel(s) but the model expects 3-channel color; convert it first "
                         "(cv::cvtColor(img, out, cv::COLOR_GRAY2BGR))");
    if (channels == 1 && c != 1 && c != 3) throw InputError("the image has " + std::to_string(c) + " channels; this grayscale model takes 1 or 3");
}

namespace detail {
inline constexpr double kLastStepMax = 2.2;  // bicubic models: the 2x box steps leave a last factor below this...
inline constexpr double kLinearFrom = 1.5;   // ...done bilinear from this factor up (OpenCV's bicubic does not antialias)

inline int cv_interp(const std::string& name) {
    if (name == "nearest") return cv::INTER_NEAREST_EXACT;  // as PIL's nearest
    if (name == "bicubic") return cv::INTER_CUBIC;
    if (name == "area") return cv::INTER_AREA;
    return cv::INTER_LINEAR;
}
}  // namespace detail

// Resize/crop one image (uint8, HxWx3 in `order`, or HxW) -> uint8 HxWxC in the model's channel order:
// preprocess.fast_pixels. No full-frame copy: the crop box is a view, reduced by exact 2x box steps.
inline cv::Mat pixels(const cv::Mat& img, Order order, const Spec& spec) {
    const auto& pre = spec.preprocess;
    const auto& in = spec.input;
    check_image(img, in.channels);
    const Box b = source_box(img.rows, img.cols, pre, in);
    cv::Mat roi = img(cv::Range(b.top, b.bottom), cv::Range(b.left, b.right));
    const bool bicubic = pre.interpolation == "bicubic";
    if (pre.interpolation != "nearest") {
        const double k = bicubic ? detail::kLastStepMax : 2.0;  // halve while the remaining factor is at least k
        while (roi.rows >= k * in.height && roi.cols >= k * in.width) {
            const int h2 = roi.rows / 2, w2 = roi.cols / 2;
            cv::Mat half;
            cv::resize(roi(cv::Range(0, 2 * h2), cv::Range(0, 2 * w2)), half, cv::Size(w2, h2), 0, 0, cv::INTER_AREA);
            roi = half;
        }
    }
    if (roi.rows != in.height || roi.cols != in.width) {
        const double factor = std::max(double(roi.rows) / in.height, double(roi.cols) / in.width);
        const int interp = bicubic && factor >= detail::kLinearFrom ? cv::INTER_LINEAR : detail::cv_interp(pre.interpolation);
        cv::Mat out;
        cv::resize(roi, out, cv::Size(in.width, in.height), 0, 0, interp);
        roi = out;
    }
    if (in.channels == 1) {
        if (roi.channels() == 3) {
            cv::Mat g;
            cv::cvtColor(roi, g, order == Order::RGB ? cv::COLOR_RGB2GRAY : cv::COLOR_BGR2GRAY);
            return g;
        }
        return roi.isContinuous() ? roi : roi.clone();
    }
    const Order want = pre.color == "BGR" ? Order::BGR : Order::RGB;
    if (order != want) {
        cv::Mat swapped;
        cv::cvtColor(roi, swapped, cv::COLOR_BGR2RGB);  // a channel swap, on the small result
        return swapped;
    }
    return roi.isContinuous() ? roi : roi.clone();
}

// Bytes of the input tensor for one image.
inline std::size_t input_bytes(const Spec& spec) {
    const std::size_t per = spec.input.dtype == "uint8" ? 1 : spec.input.dtype == "float16" ? 2 : 4;
    return spec.input.elements() * per;
}

// uint8 HxWxC pixels in model channel order -> one image of the input tensor, written to `dst` (input_bytes(spec)
// bytes): preprocess.to_input. Float input is computed as numpy does it: float32(p) * float32(1/(255 std)), then
// + float32(-mean/std), each rounded to float32.
inline void to_input(const cv::Mat& px, const Spec& spec, void* dst, std::size_t dst_bytes) {
    const auto& in = spec.input;
    if (dst_bytes != input_bytes(spec))
        throw InputError("the input buffer holds " + std::to_string(dst_bytes) + " bytes, the model's input takes " +
                         std::to_string(input_bytes(spec)) + " per image");
    if (px.type() != CV_8UC(in.channels) || px.rows != in.height || px.cols != in.width || !px.isContinuous())
        throw InputError("to_input() takes what pixels() returns for this spec (uint8 HxWxC, continuous)");
    const int H = in.height, W = in.width, C = in.channels;
    const std::uint8_t* p = px.ptr<std::uint8_t>();
    const bool nchw = in.layout == "NCHW";
    if (in.normalized_in_graph) {
        auto* out = static_cast<std::uint8_t*>(dst);
        if (!nchw || C == 1) {
            std::memcpy(out, p, std::size_t(H) * W * C);
            return;
        }
        for (int c = 0; c < C; ++c)
            for (int i = 0; i < H * W; ++i) out[std::size_t(c) * H * W + i] = p[std::size_t(i) * C + c];
        return;
    }
    std::vector<float> a(C), b(C);
    for (int c = 0; c < C; ++c) {
        a[c] = float(1.0 / (255.0 * spec.preprocess.std[c]));
        b[c] = float(-spec.preprocess.mean[c] / spec.preprocess.std[c]);
    }
    // two statements, two float32 roundings, as numpy's multiply then add; a fused multiply-add would round once (a
    // compiler emits one only for an FMA target, -march=native and the like, which the CMake files do not set)
    auto value = [&](int i, int c) {
        float v = float(p[std::size_t(i) * C + c]) * a[c];
        v += b[c];
        return v;
    };
    if (in.dtype == "float32") {
        auto* out = static_cast<float*>(dst);
        for (int i = 0; i < H * W; ++i)
            for (int c = 0; c < C; ++c) out[nchw ? std::size_t(c) * H * W + i : std::size_t(i) * C + c] = value(i, c);
        return;
    }
    cv::Mat f(1, H * W * C, CV_32F);  // float16: float32 first, then one rounding to half, as x.astype(np.float16)
    float* fp = f.ptr<float>();
    for (int i = 0; i < H * W; ++i)
        for (int c = 0; c < C; ++c) fp[nchw ? std::size_t(c) * H * W + i : std::size_t(i) * C + c] = value(i, c);
    cv::Mat h(1, H * W * C, CV_16F, dst);
    f.convertTo(h, CV_16F);
}

// --- postprocessing: scores.py and Predictor.to_predictions ----------------------------------------------------------
struct Top {
    int index;
    std::string label;
    double score;
};

struct Prediction {
    int index = -1;  // the class; -1 when rejected as unknown
    std::string label;  // "unknown" when rejected
    double score = 0.0;  // softmax(logits / T) of the top class (of the closest class when unknown); multi-label: sigmoid
    std::vector<Top> topk;  // classes by score; when unknown, topk[0] is the closest known class
    bool known = true;
    std::optional<double> ood_score;  // the open-set score, when rejecting
    std::vector<Top> labels;  // multi-label: every label at/above its threshold, highest first; else the top class
    bool multilabel = false;
};

struct PostOptions {
    int topk = 5;
    bool reject = true;  // use the spec's open-set threshold when it has one
};

// softmax(logits / T) in double (scores.softmax)
inline std::vector<double> softmax(const float* logits, std::size_t n, double temperature) {
    std::vector<double> z(logits, logits + n);
    if (temperature != 1.0)
        for (double& v : z) v /= temperature;
    const double m = *std::max_element(z.begin(), z.end());
    double sum = 0.0;
    for (double& v : z) sum += (v = std::exp(v - m));
    for (double& v : z) v /= sum;
    return z;
}

// Per-label sigmoid without overflow for large |logits| (scores.sigmoid)
inline std::vector<double> sigmoid(const float* logits, std::size_t n) {
    std::vector<double> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double z = logits[i], e = std::exp(-std::abs(z));
        out[i] = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    }
    return out;
}

// Indices of the k largest values, largest first, ties by lower index (scores.topk_indices)
inline std::vector<int> topk_indices(const std::vector<double>& row, std::size_t k) {
    std::vector<int> idx(row.size());
    std::iota(idx.begin(), idx.end(), 0);
    k = std::min(k, row.size());
    std::partial_sort(idx.begin(), idx.begin() + std::ptrdiff_t(k), idx.end(),
                      [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    idx.resize(k);
    return idx;
}

// The open-set score (higher = more like the training classes): scores.ood_score
inline double ood_score(const float* logits, std::size_t n, const std::string& name, double temperature) {
    const double m = *std::max_element(logits, logits + n);
    if (name == "max_logit") return m;
    if (name == "msp") {
        auto p = softmax(logits, n, temperature);
        return *std::max_element(p.begin(), p.end());
    }
    double sum = 0.0;  // energy: T * logsumexp(logits / T)
    for (std::size_t i = 0; i < n; ++i) sum += std::exp((double(logits[i]) - m) / temperature);
    return m + temperature * std::log(sum);
}

inline Prediction postprocess(const float* logits, std::size_t n, const Spec& spec, const PostOptions& opt = {}) {
    if (n != spec.num_classes())
        throw InputError("got " + std::to_string(n) + " logits for " + std::to_string(spec.num_classes()) + " labels; pass the model's output");
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(logits[i]))
            throw InferenceError("the model produced NaN/inf logits: it is numerically broken (NaN/inf weights, fp16 overflow, a broken "
                                 "INT8 scale). Re-export it in fp32 and check the weights");
    const std::size_t k = std::size_t(std::max(1, std::min(opt.topk, int(n))));
    Prediction p;
    auto top_of = [&](const std::vector<double>& probs, const std::vector<int>& order) {
        std::vector<Top> out;
        for (int i : order) out.push_back({i, spec.labels[std::size_t(i)], probs[std::size_t(i)]});
        return out;
    };
    if (spec.multilabel()) {
        auto probs = sigmoid(logits, n);
        bool any = false;
        for (std::size_t i = 0; i < n; ++i) any |= probs[i] >= spec.thresholds[i];
        auto ranked = top_of(probs, topk_indices(probs, any ? n : k));
        p.topk.assign(ranked.begin(), ranked.begin() + std::ptrdiff_t(std::min(k, ranked.size())));
        for (const Top& t : ranked)
            if (probs[std::size_t(t.index)] >= spec.thresholds[std::size_t(t.index)]) p.labels.push_back(t);
        p.index = p.topk[0].index, p.label = p.topk[0].label, p.score = p.topk[0].score, p.multilabel = true;
        return p;
    }
    auto probs = softmax(logits, n, spec.temperature);
    p.topk = top_of(probs, topk_indices(probs, k));
    p.index = p.topk[0].index, p.label = p.topk[0].label, p.score = p.topk[0].score;
    if (opt.reject && spec.open_set) {
        const double s = spec.open_set->score == "msp" ? p.topk[0].score : ood_score(logits, n, spec.open_set->score, spec.temperature);
        p.ood_score = s;
        p.known = s >= spec.open_set->threshold;
    }
    if (p.known)
        p.labels = {p.topk[0]};
    else
        p.index = -1, p.label = kUnknown;
    return p;
}

// --- a classifier on some runtime ------------------------------------------------------------------------------------
struct Options {
    int threads = 0;            // inference threads; 0: the runtime's choice
    std::string device = "CPU";  // OpenVINO: CPU, GPU, NPU, AUTO (ExecuTorch: CPU only)
    std::string cache_dir;      // OpenVINO's compiled-model cache: later starts load the blob instead of compiling
    std::string spec_path;      // a spec JSON file that overrides the artifact's own (it must match the model)
    PostOptions post;           // top-k, open-set rejection
};

struct Timing {
    double preprocess_ms = 0, infer_ms = 0, postprocess_ms = 0;
    double total_ms() const { return preprocess_ms + infer_ms + postprocess_ms; }
};

struct Result {
    Prediction prediction;
    Timing timing;
    std::vector<float> logits;
};

// What every runtime's classifier does with a frame; a runtime supplies the input buffer and infer(). One object
// holds one input buffer and one inference request: use one per thread (the Python Predictor keeps one per thread).
class Classifier {
   public:
    virtual ~Classifier() = default;
    const Spec& spec() const { return spec_; }
    const std::string& path() const { return path_; }

    // the model's input tensor for one image (input_bytes(spec()) bytes), as the next infer() reads it
    virtual void* input_data() = 0;
    // runs the model on the input tensor as it stands; returns the logits
    virtual std::vector<float> infer() = 0;

    // image (uint8 HxWx3 in `order`, or HxW) -> the input tensor, written in place; returns the pixels it was made from
    cv::Mat preprocess(const cv::Mat& image, Order order = Order::BGR) {
        cv::Mat px = pixels(image, order, spec_);
        to_input(px, spec_, input_data(), input_bytes(spec_));
        return px;
    }

    Prediction postprocess(const std::vector<float>& logits) const {
        return edgecls::postprocess(logits.data(), logits.size(), spec_, post_);
    }

    // One frame (from cv::VideoCapture / cv::imread: BGR) -> its prediction, the time of each step and the logits.
    Result classify(const cv::Mat& image, Order order = Order::BGR) {
        using clock = std::chrono::steady_clock;
        auto ms = [](clock::time_point t) { return std::chrono::duration<double, std::milli>(clock::now() - t).count(); };
        Result r;
        auto t = clock::now();
        preprocess(image, order);
        r.timing.preprocess_ms = ms(t);
        t = clock::now();
        r.logits = infer();
        r.timing.infer_ms = ms(t);
        t = clock::now();
        r.prediction = postprocess(r.logits);
        r.timing.postprocess_ms = ms(t);
        return r;
    }

   protected:
    Classifier(std::string path, PostOptions post) : path_(std::move(path)), post_(post) {}

    // The spec a model file carries, else its sidecar (whose recorded checksum must match the file), else the
    // override file; `embedded` is the text of the format's own slot (empty: none), named `where` in errors.
    static Spec resolve_spec(const std::string& path, const Options& opt, const std::string& embedded, const std::string& where) {
        if (!opt.spec_path.empty()) return Spec::from_file(opt.spec_path);
        if (!embedded.empty()) return Spec::parse(embedded, where);
        auto side = read_sidecar(path);
        if (!side)
            throw SpecError(path + " carries no edgecls spec in its metadata and has no sidecar " + sidecar_path(path) +
                            "; copy the .json that `edgecls export` wrote next to it, or pass a spec file");
        check_sidecar_belongs(*side, path);
        return *side;
    }

    std::string path_;
    PostOptions post_;
    Spec spec_;
};

namespace detail {
inline bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
inline std::string shape_text(const std::vector<std::int64_t>& dims) {
    std::string s = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
    return s + ")";
}
}  // namespace detail

// The spec against the model's real input (shape after the batch, dtype) and output (class count): the checks
// predictor._check_spec makes, for any runtime. `have` uses -1 for a dynamic dimension.
inline void check_spec_matches(const Spec& spec, const std::string& path, const std::vector<std::int64_t>& have,
                               const std::string& dtype, std::int64_t classes) {
    const auto want = spec.input.shape();
    bool same = have.size() == want.size();
    for (std::size_t i = 1; same && i < have.size(); ++i) same = have[i] < 0 || have[i] == want[i];
    if (!same)
        throw SpecError(path + ": the spec says input " + spec.input.layout + " " + detail::shape_text({want.begin() + 1, want.end()}) +
                        " but the model takes " + detail::shape_text(have) + "; the spec belongs to another model. Re-export, or fix the sidecar JSON");
    if (classes > 0 && std::size_t(classes) != spec.num_classes())
        throw SpecError(path + ": the model outputs " + std::to_string(classes) + " classes but the spec has " +
                        std::to_string(spec.num_classes()) + " labels; the spec belongs to another model: pass the spec that belongs to "
                        "this file (its sidecar), or re-export");
    if (dtype != spec.input.dtype)
        throw SpecError(path + ": the spec says input dtype " + spec.input.dtype + " but the model takes " + dtype +
                        "; the spec belongs to another export (fused uint8 vs float input?). Re-export, or fix the sidecar JSON");
}

}  // namespace edgecls
