// parse_specs: edgecls.hpp's spec reader over many files in one process, for tests/test_cpp.py (hostile and corrupted
// specs next to Python's ModelSpec.from_json). One JSON line per file: {"file", "ok", "error"}; "unexpected" marks an
// exception that is not an edgecls::Error (a reader bug: the test fails on it).
#include <iostream>

#include "edgecls.hpp"

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        nlohmann::json line{{"file", argv[i]}, {"ok", false}};
        try {
            const edgecls::Spec s = edgecls::Spec::from_file(argv[i]);
            line["ok"] = true;
            line["labels"] = s.labels.size();
        } catch (const edgecls::Error& e) {
            line["error"] = e.what();
        } catch (const std::exception& e) {
            line["unexpected"] = e.what();
        }
        std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    }
    return 0;
}
