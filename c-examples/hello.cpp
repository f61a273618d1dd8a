// hello.cpp: the header is clean C++ (extern "C" guards, no C-only constructs); this
// program is built with -std=c++17 -Wall -Wextra -Wpedantic -Werror and run by the tests.
#include <cstdio>
#include <cstring>
#include <string>

#include "redipc.h"

namespace {

// A tiny RAII owner, as a C++ wrapper would have.
struct Client {
    ipc_client *raw = nullptr;
    Client() = default;
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    ~Client() { ipc_client_free(raw); }
};

}  // namespace

int main(int argc, char **argv) {
    std::printf("redipc %s, %s\n", ipc_version(), ipc_result_name(IPC_ERR_TIMEOUT));
    if (argc < 2) return 0;
    Client c;
    ipc_result rc = ipc_client_new(argv[1], nullptr, &c.raw);
    if (rc != IPC_OK) {
        std::fprintf(stderr, "connect: %s: %s\n", ipc_result_name(rc), ipc_last_error_message());
        return 1;
    }
    const std::string key = "hello:cpp", value = "from C++";
    rc = ipc_set(c.raw, key.data(), key.size(), value.data(),
                 value.size(), 0);
    if (rc != IPC_OK) return 1;
    char *buf = nullptr;
    size_t len = 0;
    bool found = false;
    rc = ipc_get(c.raw, key.data(), key.size(), &buf, &len, &found);
    if (rc != IPC_OK || !found) return 1;
    std::string got(buf, len);
    ipc_buf_free(buf, len);
    std::printf("GET %s -> %s\n", key.c_str(), got.c_str());
    return got == value ? 0 : 1;
}
