// camera_app: classify the frames of a video file or camera, or image files, with an edgecls OpenVINO artifact,
// using the preprocessing, labels, calibration and open-set threshold the artifact carries (cpp/edgecls.hpp).
//
//   camera_app MODEL (--video PATH|URL|PIPELINE | --camera N | --image FILE [--image FILE ...]) [options]
//     --threads N        OpenVINO inference threads (default: OpenVINO's choice)
//     --device NAME      OpenVINO device: CPU (default), GPU, NPU, AUTO
//     --cache DIR        compiled-model cache: later starts load the blob instead of compiling
//     --topk K           classes per answer (default 5)
//     --no-reject        never answer "unknown", even when the spec has an open-set threshold
//     --spec FILE        a spec JSON that overrides the artifact's own
//     --max-frames N     stop after N frames
//     --json             one JSON object per frame (label, scores, top-k, timings, logits) instead of text
//     --dump-inputs DIR  write each frame's model input tensor as DIR/<frame>.npy (to compare with Python)
// MODEL: an edgecls .xml (with its .bin) or .onnx (OpenVINO), or .pte (ExecuTorch, when built with it). Exit status:
// 0 done, 2 a bad model, spec, input or option (one line on stderr saying what and what to do), 3 anything else.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "edgecls_openvino.hpp"
#ifdef EDGECLS_WITH_EXECUTORCH
#include "edgecls_executorch.hpp"
#endif

namespace {

struct Args {
    std::string model, video, dump_dir;
    int camera = -1, max_frames = -1;
    std::vector<std::string> images;
    bool json = false;
    edgecls::Options options;
};

int to_int(const std::string& flag, const std::string& v, int lo) {
    try {
        std::size_t used = 0;
        int x = std::stoi(v, &used);
        if (used == v.size() && x >= lo) return x;
    } catch (const std::exception&) {
    }
    throw edgecls::InputError(flag + " takes an integer >= " + std::to_string(lo) + ", got '" + v + "'");
}

Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw edgecls::InputError(f + " needs a value; run camera_app without arguments for the usage");
            return argv[++i];
        };
        if (f == "--video") a.video = value();
        else if (f == "--camera") a.camera = to_int(f, value(), 0);
        else if (f == "--image") a.images.push_back(value());
        else if (f == "--threads") a.options.threads = to_int(f, value(), 1);
        else if (f == "--device") a.options.device = value();
        else if (f == "--cache") a.options.cache_dir = value();
        else if (f == "--topk") a.options.post.topk = to_int(f, value(), 1);
        else if (f == "--no-reject") a.options.post.reject = false;
        else if (f == "--spec") a.options.spec_path = value();
        else if (f == "--max-frames") a.max_frames = to_int(f, value(), 1);
        else if (f == "--json") a.json = true;
        else if (f == "--dump-inputs") a.dump_dir = value();
        else if (f.rfind("--", 0) == 0) throw edgecls::InputError("unknown option " + f + "; run camera_app without arguments for the usage");
        else if (a.model.empty()) a.model = f;
        else throw edgecls::InputError("unexpected argument '" + f + "'; images go after --image");
    }
    const int sources = !a.video.empty() + (a.camera >= 0) + !a.images.empty();
    if (a.model.empty() || sources != 1)
        throw edgecls::InputError("give a model and one source: camera_app MODEL (--video PATH | --camera N | --image FILE ...)");
    return a;
}

// The model input as .npy (numpy's format 1.0), so a test can compare it with the Python Predictor's
void write_npy(const std::string& path, edgecls::Classifier& clf) {
    const auto& in = clf.spec().input;
    const std::string descr = in.dtype == "uint8" ? "|u1" : in.dtype == "float16" ? "<f2" : "<f4";
    std::string shape;
    for (auto d : in.shape()) shape += std::to_string(d) + ", ";
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
    header.append(64 - (10 + header.size() + 1) % 64, ' ').push_back('\n');
    std::ofstream f(path, std::ios::binary);
    const unsigned short len = static_cast<unsigned short>(header.size());
    f.write("\x93NUMPY\x01\x00", 8);
    f.put(char(len & 0xff)).put(char(len >> 8));
    f << header;
    f.write(static_cast<const char*>(clf.input_data()), std::streamsize(edgecls::input_bytes(clf.spec())));
    if (!f) throw edgecls::InputError("cannot write " + path + "; check that the folder of --dump-inputs exists and is writable");
}

nlohmann::json tops(const std::vector<edgecls::Top>& v) {
    auto out = nlohmann::json::array();
    for (const auto& t : v) out.push_back({t.index, t.label, t.score});
    return out;
}

void report(const Args& a, const std::string& source, long frame, const edgecls::Result& r) {
    const auto& p = r.prediction;
    if (a.json) {
        nlohmann::json j{{"source", source}, {"frame", frame}, {"index", p.index}, {"label", p.label}, {"score", p.score},
                         {"known", p.known}, {"topk", tops(p.topk)}, {"labels", tops(p.labels)},
                         {"preprocess_ms", r.timing.preprocess_ms}, {"infer_ms", r.timing.infer_ms},
                         {"postprocess_ms", r.timing.postprocess_ms}, {"latency_ms", r.timing.total_ms()}, {"logits", r.logits}};
        j["ood_score"] = p.ood_score ? nlohmann::json(*p.ood_score) : nlohmann::json(nullptr);
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return;
    }
    std::string what = p.multilabel ? "" : p.label + (p.known ? " #" + std::to_string(p.index) : " (closest: " + p.topk[0].label + ")");
    if (p.multilabel)
        for (const auto& t : p.labels) what += (what.empty() ? "" : ", ") + t.label;
    char line[160];
    std::snprintf(line, sizeof line, "  %.3f  %.2f ms (preprocess %.2f + infer %.2f + postprocess %.2f)", p.score, r.timing.total_ms(),
                  r.timing.preprocess_ms, r.timing.infer_ms, r.timing.postprocess_ms);
    std::cout << source << " frame " << frame << ": " << (what.empty() ? "(no label)" : what) << line << "\n";
}

void classify(edgecls::Classifier& clf, const Args& a, const std::string& source, long frame, const cv::Mat& img) {
    auto r = clf.classify(img, edgecls::Order::BGR);  // OpenCV decodes to BGR
    if (!a.dump_dir.empty()) write_npy(a.dump_dir + "/" + std::to_string(frame) + ".npy", clf);
    report(a, source, frame, r);
}

std::unique_ptr<edgecls::Classifier> open_model(const Args& a) {
    if (edgecls::detail::ends_with(a.model, ".pte")) {
#ifdef EDGECLS_WITH_EXECUTORCH
        return std::make_unique<edgecls::ExecuTorchClassifier>(a.model, a.options);
#else
        throw edgecls::InputError(a.model + ": this camera_app was built without ExecuTorch; configure it with "
                                  "-Dexecutorch_DIR=<the executorch wheel's share/cmake> to run .pte files");
#endif
    }
    return std::make_unique<edgecls::OpenVinoClassifier>(a.model, a.options);
}

// libjpeg prints its own warnings ("Premature end of JPEG file") on stderr while cv::imread decodes; the app's stderr
// carries one line per error, so they are silenced for the call (an undecodable file is still reported, below)
struct QuietStderr {
#ifndef _WIN32
    int saved = -1;
    QuietStderr() {
        std::fflush(stderr);
        saved = dup(2);
        if (int null = open("/dev/null", O_WRONLY); null >= 0) { dup2(null, 2); close(null); }
    }
    ~QuietStderr() {
        if (saved < 0) return;
        std::fflush(stderr);
        dup2(saved, 2);
        close(saved);
    }
#endif
};

int run(const Args& a) {
    auto model = open_model(a);
    edgecls::Classifier& clf = *model;
    long frame = 0;
    if (!a.images.empty()) {
        for (const auto& file : a.images) {
            // IMREAD_COLOR applies the EXIF orientation and gives 3 channels (grey repeated), as edgecls reads files
            if (!edgecls::file_exists(file)) throw edgecls::InputError("image file not found: " + file + "; check the path");
            cv::Mat img;
            {
                QuietStderr quiet;
                img = cv::imread(file, cv::IMREAD_COLOR);
            }
            if (img.empty())
                throw edgecls::InputError(file + " is not an image file OpenCV can read (corrupt or unsupported format); convert it to JPEG or PNG");
            classify(clf, a, file, frame++, img);
            if (a.max_frames > 0 && frame >= a.max_frames) break;
        }
        return 0;
    }
    cv::VideoCapture cap;
    const std::string source = a.camera >= 0 ? "camera " + std::to_string(a.camera) : a.video;
    if (a.camera >= 0) cap.open(a.camera);
    else cap.open(a.video);
    if (!cap.isOpened()) throw edgecls::InputError("cannot open video source " + source + "; check the path, URL or camera index");
    for (cv::Mat img; (a.max_frames < 0 || frame < a.max_frames) && cap.read(img);) classify(clf, a, source, frame++, img);
    if (frame == 0) throw edgecls::InputError(source + " gave no frames; the file is empty, corrupt or in a codec this OpenCV cannot decode");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: camera_app MODEL (--video PATH | --camera N | --image FILE [--image FILE ...]) [--threads N] "
                     "[--device CPU] [--cache DIR] [--topk K] [--no-reject] [--spec FILE] [--max-frames N] [--json] [--dump-inputs DIR]\n";
        return 2;
    }
    // OpenCV logs its own warnings for a file it cannot open; the error below says what failed and what to do, in one line
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    try {
        return run(parse_args(argc, argv));
    } catch (const edgecls::Error& e) {  // raised on purpose: the message says what to change
        std::cerr << "camera_app: error: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "camera_app: unexpected error: " << edgecls::detail::one_line(e.what()) << "\n";
        return 3;
    }
}
