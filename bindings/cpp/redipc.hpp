// redipc.hpp: a header-only C++17 wrapper of libredipc (the C API in redipc.h).
//
//     #include "redipc.hpp"          // build: -std=c++17 -I<include> ... -lredipc
//     redipc::client c("unix:///run/redis.sock");
//     c.set("k", "v");
//     auto sub = c.subscribe("news", [](const redipc::message &m) { ... });
//     c.publish("news", "hello");
//
// Choices (one each, applied everywhere):
//
// - Errors are exceptions. Every C call that returns an `ipc_result` other than `IPC_OK`
//   throws `redipc::error` (a `std::runtime_error`) carrying the code (`result()`), its name
//   (`name()`, "IPC_ERR_SERVER"), the text of `ipc_last_error_message()` (`message()`) and
//   the server's error code (`server_code()`, "WRONGTYPE"). Chosen over an `expected`-style
//   result because C++17 has no `std::expected`, the owners below are RAII anyway, and the
//   common code path stays linear. Absence is not an error: `get()` returns
//   `std::optional<std::string>`.
// - Every handle has a move-only RAII owner (`client`, `reply`, `subscription`, `group`,
//   `batch`, `worker`, `server`, `lock`, `entries`, `stream_follower`, `stream_consumer`,
//   `hash_watcher`, `key_watch`, and the options builders `options`, `subscribe_options`,
//   `worker_options`, `consumer_options`, `hash_watch_options`, `call_options`,
//   `hash_write_options`); the destructor calls the C
//   `_free` function; `reset()` frees early; `get()` gives the C pointer. A moved-from
//   (empty) owner throws `IPC_ERR_NULL_ARG` when used. Handles made from a client must be
//   destroyed before it (declaring them after the client does it). Handles that run
//   callbacks have `stop(timeout_ms)`: the C `_stop` (from inside one of their own
//   callbacks it only asks; IPC_ERR_TIMEOUT while a callback still runs at the deadline).
// - Bytes in: `redipc::bytes_view` converts implicitly from `std::string_view`,
//   `std::string`, a NUL-terminated `const char *`, `std::vector<std::byte>`,
//   `std::vector<uint8_t>`, and `{pointer, size}` (C++17 has no `std::span`). Binary-safe.
//   Bytes out: `std::string` (owned) or `std::string_view` (borrowed from a reply, message or
//   entry, valid as long as it).
// - Callbacks are `std::function`s, moved into a heap box whose pointer is the C
//   `userdata`; the C `userdata_free` hook deletes the box (exactly once, when the handle
//   ends). An exception thrown by a callback never unwinds into C: the trampoline catches
//   it. A worker's, consumer's or RPC handler's exception is its failure (its `what()` is
//   the error text); any other callback's exception goes to the callback error handler
//   (`redipc::set_callback_error_handler`, default: one line on std::cerr). The exception
//   of a `transaction()` function aborts the transaction and is rethrown by
//   `transaction()` on the calling thread.
// - Reports (`redipc::report`: a handler failed, requests were dead-lettered, a loop lost
//   its connection, ...) go to a `report_handler` set on the client's `options` or on a
//   handle's options (`worker_options::report()`, ...); every report is also logged.
// - The library prints nothing: its log records (connections lost with the reason and
//   restored, every report) go to the one `redipc::set_log_handler()` of the process.
//   `client::stats()` returns its counters (`ipc_client_counts`), `latency_histogram()` its
//   latency buckets.
// - Threads: as in C. A `client` is shared by any number of threads; callbacks run on the
//   library's threads (or inside `client::poll()` in poll mode).
#ifndef REDIPC_HPP
#define REDIPC_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "redipc.h"

namespace redipc {

/// The version of the library that is running ("0.1.0").
inline const char *version() noexcept { return ipc_version(); }

// ---------------------------------------------------------------------------------------
// Errors

/// A failed call: the `ipc_result` code and name, the library's message, and the server's
/// error code for `IPC_ERR_SERVER`. `what()` is "NAME: message".
class error : public std::runtime_error {
public:
    error(ipc_result result, std::string message, std::string server_code = {})
        : std::runtime_error(std::string(ipc_result_name(result)) + ": " + message),
          result_(result), message_(std::move(message)), server_code_(std::move(server_code)) {}

    /// The `ipc_result` code.
    ipc_result result() const noexcept { return result_; }
    /// Its name as written in redipc.h: "IPC_ERR_TIMEOUT", ...
    const char *name() const noexcept { return ipc_result_name(result_); }
    /// `ipc_last_error_message()` of the failed call.
    const std::string &message() const noexcept { return message_; }
    /// The server's code ("WRONGTYPE", "ERR", "EXECABORT") for `IPC_ERR_SERVER`, else "".
    const std::string &server_code() const noexcept { return server_code_; }

    bool is_connection() const noexcept { return result_ == IPC_ERR_CONNECTION; }
    bool is_timeout() const noexcept { return result_ == IPC_ERR_TIMEOUT; }
    bool is_server() const noexcept { return result_ == IPC_ERR_SERVER; }
    bool is_closed() const noexcept { return result_ == IPC_ERR_CLOSED; }
    bool is_invalid_argument() const noexcept {
        return result_ == IPC_ERR_INVALID_ARGUMENT || result_ == IPC_ERR_NULL_ARG;
    }
    bool is_remote() const noexcept { return result_ == IPC_ERR_REMOTE; }
    bool is_no_server() const noexcept { return result_ == IPC_ERR_NO_SERVER; }
    bool is_handler() const noexcept { return result_ == IPC_ERR_HANDLER; }
    bool is_tx_aborted() const noexcept { return result_ == IPC_ERR_TX_ABORTED; }

private:
    ipc_result result_;
    std::string message_;
    std::string server_code_;
};

/// Where exceptions of callbacks that have no failure path of their own go (subscription,
/// group, hash watcher, keyspace and report callbacks): `where` names the callback. Runs on the
/// callback's thread; it must not throw (what it throws is dropped).
using callback_error_handler = std::function<void(const char *where, std::exception_ptr)>;

namespace detail {

inline error last_error(ipc_result r) {
    return error(r, ipc_last_error_message(), ipc_last_error_code());
}

inline void check(ipc_result r) {
    if (r != IPC_OK) throw last_error(r);
}

/// Uses an `IPC_MUST_USE` result where failing is not actionable (inside a trampoline).
inline void ignore(ipc_result) noexcept {}

[[noreturn]] inline void throw_empty(const char *what) {
    throw error(IPC_ERR_NULL_ARG, std::string("use of an empty redipc::") + what +
                                      " (moved from or reset)");
}

inline std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception &x) {
        return x.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

struct handler_slot {
    std::mutex mu;
    callback_error_handler fn;
};

inline handler_slot &error_slot() {
    static handler_slot slot;
    return slot;
}

/// Called inside a catch block of a trampoline: hand the exception to the handler.
inline void report(const char *where) noexcept {
    try {
        std::exception_ptr e = std::current_exception();
        callback_error_handler fn;
        {
            std::lock_guard<std::mutex> g(error_slot().mu);
            fn = error_slot().fn;
        }
        if (fn) {
            fn(where, e);
        } else {
            std::cerr << "redipc: exception in " << where << ": " << describe(e) << std::endl;
        }
    } catch (...) {
        // Nothing may leave a trampoline.
    }
}

/// The text of the exception being handled (inside a catch block).
inline std::string current_text() noexcept {
    try {
        return describe(std::current_exception());
    } catch (...) {
        return "exception";
    }
}

template <class T, void (*Free)(T *)>
class owner {
public:
    owner() noexcept = default;
    explicit owner(T *p) noexcept : p_(p) {}
    owner(owner &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    owner &operator=(owner &&o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    owner(const owner &) = delete;
    owner &operator=(const owner &) = delete;
    ~owner() { reset(); }

    void reset() noexcept {
        if (T *p = std::exchange(p_, nullptr)) Free(p);
    }
    T *get() const noexcept { return p_; }
    T *release() noexcept { return std::exchange(p_, nullptr); }

private:
    T *p_ = nullptr;
};

/// A heap box holding a callback; its address is the C `userdata`.
template <class F>
struct box {
    F fn;
};

template <class F>
void free_box(void *userdata) noexcept {
    delete static_cast<box<F> *>(userdata);
}

/// A buffer the library returned (`ipc_buf_free` when done).
struct buffer {
    char *data = nullptr;
    size_t size = 0;
    buffer() noexcept = default;
    buffer(const buffer &) = delete;
    buffer &operator=(const buffer &) = delete;
    ~buffer() { ipc_buf_free(data, size); }
    std::string str() const { return std::string(data, size); }
};

}  // namespace detail

/// Install the handler of callback exceptions (an empty function restores the default,
/// which writes one line to std::cerr).
inline void set_callback_error_handler(callback_error_handler fn) {
    std::lock_guard<std::mutex> g(detail::error_slot().mu);
    detail::error_slot().fn = std::move(fn);
}

// ---------------------------------------------------------------------------------------
// Bytes in

/// A borrowed run of bytes: what every key, value, channel and payload parameter takes.
class bytes_view {
public:
    constexpr bytes_view() noexcept = default;
    /// A NUL-terminated string (NULL is refused with IPC_ERR_NULL_ARG).
    bytes_view(const char *s) : data_(s), size_(s ? std::strlen(s) : 0) {
        if (!s) throw error(IPC_ERR_NULL_ARG, "a NULL const char * was given as bytes");
    }
    bytes_view(std::string_view s) noexcept : data_(s.data() ? s.data() : ""), size_(s.size()) {}
    bytes_view(const std::string &s) noexcept : data_(s.data()), size_(s.size()) {}
    bytes_view(const std::vector<std::byte> &v) noexcept
        : data_(v.empty() ? "" : reinterpret_cast<const char *>(v.data())), size_(v.size()) {}
    bytes_view(const std::vector<uint8_t> &v) noexcept
        : data_(v.empty() ? "" : reinterpret_cast<const char *>(v.data())), size_(v.size()) {}
    /// `size` bytes at `data` (NULL only with size 0).
    bytes_view(const void *data, size_t size)
        : data_(data ? static_cast<const char *>(data) : ""), size_(size) {
        if (!data && size) throw error(IPC_ERR_NULL_ARG, "a NULL pointer with a non-zero size");
    }

    const char *data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data_, size_}; }
    std::string str() const { return std::string(data_, size_); }

private:
    const char *data_ = "";
    size_t size_ = 0;
};

/// One command argument: bytes (as bytes_view), or a number written in decimal.
class arg {
public:
    arg(bytes_view b) noexcept : view_(b) {}
    arg(const char *s) : view_(s) {}
    arg(std::string_view s) noexcept : view_(s) {}
    arg(const std::string &s) noexcept : view_(s) {}
    arg(const std::vector<std::byte> &v) noexcept : view_(v) {}
    arg(const std::vector<uint8_t> &v) noexcept : view_(v) {}
    template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                            !std::is_same_v<T, char>,
                                        int> = 0>
    arg(T v) : own_(std::to_string(v)), owned_(true) {}
    arg(double v) : owned_(true) {
        char buf[32];
        int n = std::snprintf(buf, sizeof buf, "%.17g", v);
        own_.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
    }

    const char *data() const noexcept { return owned_ ? own_.c_str() : view_.data(); }
    size_t size() const noexcept { return owned_ ? own_.size() : view_.size(); }

private:
    bytes_view view_;
    std::string own_;
    bool owned_ = false;
};

/// A list of names (channels, queues, keys, events): owned copies, passed to C as an array
/// of byte strings (`c_strs()` with `lens()`; also NUL-terminated for event names).
class names {
public:
    names(std::initializer_list<bytes_view> l) {
        for (const auto &b : l) v_.emplace_back(b.data(), b.size());
    }
    names(const char *s) { v_.emplace_back(bytes_view(s).str()); }
    names(std::string_view s) { v_.emplace_back(s); }
    names(const std::string &s) { v_.push_back(s); }
    names(const std::vector<std::string> &v) : v_(v) {}
    names(const std::vector<std::string_view> &v) {
        for (auto s : v) v_.emplace_back(s);
    }

    size_t size() const noexcept { return v_.size(); }
    /// NUL-terminated pointers (valid while this lives).
    std::vector<const char *> c_strs() const {
        std::vector<const char *> out;
        for (const auto &s : v_) out.push_back(s.c_str());
        return out;
    }
    std::vector<size_t> lens() const {
        std::vector<size_t> out;
        for (const auto &s : v_) out.push_back(s.size());
        return out;
    }

private:
    std::vector<std::string> v_;
};

namespace detail {

struct argv {
    std::vector<const char *> ptrs;
    std::vector<size_t> lens;
    template <class It>
    argv(It first, It last) {
        for (; first != last; ++first) {
            ptrs.push_back(first->data());
            lens.push_back(first->size());
        }
    }
};

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Replies

/// A borrowed reply: the root of a `reply`, or one of its elements. Valid while the root
/// `reply` lives.
class reply_ref {
public:
    explicit reply_ref(const ipc_reply *r) noexcept : r_(r) {}

    ipc_reply_kind type() const noexcept { return ipc_reply_type(r_); }
    const char *type_name() const noexcept { return ipc_reply_kind_name(type()); }
    bool is_nil() const noexcept { return type() == IPC_REPLY_NIL; }
    bool is_error() const noexcept { return type() == IPC_REPLY_ERROR; }
    bool is_aggregate() const noexcept {
        auto t = type();
        return t == IPC_REPLY_ARRAY || t == IPC_REPLY_MAP || t == IPC_REPLY_SET ||
               t == IPC_REPLY_PUSH;
    }

    /// An `IPC_REPLY_INT`; IPC_ERR_INVALID_ARGUMENT for another type.
    int64_t integer() const {
        int64_t v = 0;
        detail::check(ipc_reply_integer(r_, &v));
        return v;
    }
    /// An `IPC_REPLY_DOUBLE` (RESP3).
    double number() const {
        double v = 0;
        detail::check(ipc_reply_double(r_, &v));
        return v;
    }
    /// An `IPC_REPLY_BOOL` (RESP3).
    bool boolean() const {
        bool v = false;
        detail::check(ipc_reply_bool(r_, &v));
        return v;
    }
    /// The bytes of a bulk, status, verbatim, big number or error reply (borrowed).
    std::string_view str() const {
        const char *p = nullptr;
        size_t n = 0;
        detail::check(ipc_reply_string(r_, &p, &n));
        return {p, n};
    }
    std::string string() const { return std::string(str()); }

    /// Elements of an aggregate (maps: keys and values alternate); 0 for other types.
    size_t size() const noexcept { return ipc_reply_len(r_); }
    bool empty() const noexcept { return size() == 0; }
    reply_ref operator[](size_t i) const {
        const ipc_reply *e = ipc_reply_element(r_, i);
        if (!e) throw error(IPC_ERR_INVALID_ARGUMENT, ipc_last_error_message());
        return reply_ref(e);
    }

    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = reply_ref;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = reply_ref;
        iterator(const ipc_reply *r, size_t i) noexcept : r_(r), i_(i) {}
        reply_ref operator*() const { return reply_ref(r_)[i_]; }
        iterator &operator++() noexcept {
            ++i_;
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator t = *this;
            ++i_;
            return t;
        }
        bool operator==(const iterator &o) const noexcept { return r_ == o.r_ && i_ == o.i_; }
        bool operator!=(const iterator &o) const noexcept { return !(*this == o); }

    private:
        const ipc_reply *r_;
        size_t i_;
    };
    iterator begin() const noexcept { return iterator(r_, 0); }
    iterator end() const noexcept { return iterator(r_, size()); }

    const ipc_reply *get() const noexcept { return r_; }

protected:
    const ipc_reply *r_;
};

/// An owned reply (of `command()`, `tx::exec()`, ...): a `reply_ref` to its root that frees
/// the tree when destroyed.
class reply : public reply_ref {
public:
    explicit reply(ipc_reply *r) noexcept : reply_ref(r) {}
    reply(reply &&o) noexcept : reply_ref(std::exchange(o.r_, nullptr)) {}
    reply &operator=(reply &&o) noexcept {
        if (this != &o) {
            ipc_reply_free(const_cast<ipc_reply *>(r_));
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    reply(const reply &) = delete;
    reply &operator=(const reply &) = delete;
    ~reply() { ipc_reply_free(const_cast<ipc_reply *>(r_)); }
};

// ---------------------------------------------------------------------------------------
// Reports

/// A report of a handle (`ipc_report`), borrowed: valid only during the report callback.
class report {
public:
    explicit report(const ipc_report *r) noexcept : r_(r) {}
    ipc_report_kind kind() const noexcept { return r_->kind; }
    ipc_report_source source() const noexcept { return r_->source; }
    /// The queue, service, stream, hash, channel or key pattern.
    std::string_view name() const noexcept { return {r_->name, r_->name_len}; }
    /// The consumer group (stream consumers).
    std::optional<std::string_view> group() const noexcept {
        if (!r_->group) return std::nullopt;
        return std::string_view(r_->group, r_->group_len);
    }
    /// The item (a stream entry id, ...).
    std::optional<std::string_view> item() const noexcept {
        if (!r_->item) return std::nullopt;
        return std::string_view(r_->item);
    }
    uint32_t attempt() const noexcept { return r_->attempt; }
    uint32_t max_attempts() const noexcept { return r_->max_attempts; }
    uint64_t count() const noexcept { return r_->count; }
    /// The error's code (IPC_OK when none) and text.
    ipc_result error() const noexcept { return r_->error; }
    std::string_view error_message() const noexcept { return r_->error_message; }
    std::optional<std::string_view> during() const noexcept {
        if (!r_->during) return std::nullopt;
        return std::string_view(r_->during);
    }
    /// The report as one line (the message it is logged with, target "redipc::report").
    std::string_view text() const noexcept { return r_->text; }
    const ipc_report *get() const noexcept { return r_; }

private:
    const ipc_report *r_;
};

using report_handler = std::function<void(const report &)>;

namespace detail {

inline void report_trampoline(void *userdata, const ipc_report *r) noexcept {
    try {
        static_cast<box<report_handler> *>(userdata)->fn(redipc::report(r));
    } catch (...) {
        redipc::detail::report("a report callback");
    }
}

/// Hand `fn` to a report setter `set(cb, userdata, userdata_free)`; the library deletes the
/// box once nothing can report to it any more.
template <class Set>
void set_report(report_handler fn, Set set) {
    if (!fn) {
        check(set(nullptr, nullptr, nullptr));
        return;
    }
    auto b = std::make_unique<box<report_handler>>(box<report_handler>{std::move(fn)});
    check(set(&report_trampoline, static_cast<void *>(b.get()), &free_box<report_handler>));
    b.release();
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// The log

/// A log callback: the record's level (`IPC_LOG_ERROR` .. `IPC_LOG_TRACE`), its target
/// ("redipc::connection", "redipc::pubsub", "redipc::report") and its message (one line,
/// never a password); the views are valid only during the call.
using log_handler =
    std::function<void(ipc_log_level level, std::string_view target, std::string_view message)>;

namespace detail {

inline void log_trampoline(void *userdata, int level, const char *target, const char *message) noexcept {
    try {
        static_cast<box<log_handler> *>(userdata)->fn(static_cast<ipc_log_level>(level), target, message);
    } catch (...) {
        redipc::detail::report("a log callback");
    }
}

}  // namespace detail

/// Send the library's log records up to `level` to `fn` (`ipc_set_log_callback`): one for
/// the whole process, replacing the one before; an empty function (or `IPC_LOG_OFF`) removes
/// it. When this returns, the previous function is no longer running on any thread and has
/// been destroyed. `fn` runs on the library's threads: thread-safe and quick; its exceptions
/// go to the callback error handler; it must not call `set_log_handler()` (IPC_ERR_INVALID_ARGUMENT).
/// Without one, records are dropped: the library prints nothing.
inline void set_log_handler(log_handler fn, ipc_log_level level = IPC_LOG_INFO) {
    if (!fn) {
        detail::check(ipc_set_log_callback(IPC_LOG_OFF, nullptr, nullptr, nullptr));
        return;
    }
    auto b = std::make_unique<detail::box<log_handler>>(detail::box<log_handler>{std::move(fn)});
    detail::check(ipc_set_log_callback(static_cast<int>(level), &detail::log_trampoline,
                                       static_cast<void *>(b.get()), &detail::free_box<log_handler>));
    b.release();
}

// ---------------------------------------------------------------------------------------
// Options

/// Connection settings (`ipc_options`), a builder: `options().connect_timeout_ms(500)`.
class options {
public:
    options() {
        ipc_options *p = nullptr;
        detail::check(ipc_options_new(&p));
        h_ = owner_t(p);
    }
    options &connect_timeout_ms(uint64_t ms) { return set(ipc_options_set_connect_timeout_ms(p(), ms)); }
    options &response_timeout_ms(uint64_t ms) { return set(ipc_options_set_response_timeout_ms(p(), ms)); }
    options &connect_timeout(std::chrono::milliseconds d) { return connect_timeout_ms(static_cast<uint64_t>(d.count())); }
    options &response_timeout(std::chrono::milliseconds d) { return response_timeout_ms(static_cast<uint64_t>(d.count())); }
    options &client_name(const std::string &s) { return set(ipc_options_set_client_name(p(), s.c_str())); }
    options &database(int64_t db) { return set(ipc_options_set_database(p(), db)); }
    options &username(const std::string &s) { return set(ipc_options_set_username(p(), s.c_str())); }
    options &password(const std::string &s) { return set(ipc_options_set_password(p(), s.c_str())); }
    options &sentinel_username(const std::string &s) { return set(ipc_options_set_sentinel_username(p(), s.c_str())); }
    options &sentinel_password(const std::string &s) { return set(ipc_options_set_sentinel_password(p(), s.c_str())); }
    options &key_prefix(const std::string &s) { return set(ipc_options_set_key_prefix(p(), s.c_str())); }
    options &io_threads(size_t n) { return set(ipc_options_set_io_threads(p(), n)); }
    options &resp3(bool on) { return set(ipc_options_set_resp3(p(), on)); }
    options &max_value_size(size_t bytes) { return set(ipc_options_set_max_value_size(p(), bytes)); }
    options &max_reply_size(size_t bytes) { return set(ipc_options_set_max_reply_size(p(), bytes)); }
    options &reconnect_min_delay_ms(uint64_t ms) { return set(ipc_options_set_reconnect_min_delay_ms(p(), ms)); }
    options &reconnect_max_delay_ms(uint64_t ms) { return set(ipc_options_set_reconnect_max_delay_ms(p(), ms)); }
    options &reconnect_max_attempts(uint32_t n) { return set(ipc_options_set_reconnect_max_attempts(p(), n)); }
    options &poll_mode(bool on) { return set(ipc_options_set_poll_mode(p(), on)); }
    options &health_check_interval_ms(uint64_t ms) { return set(ipc_options_set_health_check_interval_ms(p(), ms)); }
    options &stream_maxlen(size_t n) { return set(ipc_options_set_stream_maxlen(p(), n)); }
    /// Standalone or Redis Cluster (`ipc_cluster_mode`; default `IPC_CLUSTER_AUTO`).
    options &cluster(ipc_cluster_mode mode) { return set(ipc_options_set_cluster(p(), static_cast<int>(mode))); }
    options &read_from_replicas(bool on) { return set(ipc_options_set_read_from_replicas(p(), on)); }
    options &direct_connections(size_t n) { return set(ipc_options_set_direct_connections(p(), n)); }
    /// TLS, for `rediss://` URLs: PEM files, or PEM text (`*_pem`).
    options &tls_ca_file(const std::string &path) { return set(ipc_options_set_tls_ca_file(p(), path.c_str())); }
    options &tls_ca_pem(std::string_view pem) { return set(ipc_options_set_tls_ca_pem(p(), pem.data(), pem.size())); }
    options &tls_cert_file(const std::string &path) { return set(ipc_options_set_tls_cert_file(p(), path.c_str())); }
    options &tls_cert_pem(std::string_view pem) { return set(ipc_options_set_tls_cert_pem(p(), pem.data(), pem.size())); }
    options &tls_key_file(const std::string &path) { return set(ipc_options_set_tls_key_file(p(), path.c_str())); }
    options &tls_key_pem(std::string_view pem) { return set(ipc_options_set_tls_key_pem(p(), pem.data(), pem.size())); }
    options &tls_server_name(const std::string &name) { return set(ipc_options_set_tls_server_name(p(), name.c_str())); }
    /// Accept any server certificate: no protection against a man in the middle (tests only).
    options &tls_insecure(bool on) { return set(ipc_options_set_tls_insecure(p(), on)); }
    /// Where the reports of the client's handles go (unless a handle has its own); an
    /// empty function restores the default (none: reports are only logged).
    options &report(report_handler fn) {
        detail::set_report(std::move(fn), [&](ipc_report_cb cb, void *ud, ipc_userdata_free_cb f) {
            return ipc_options_set_report_cb(p(), cb, ud, f);
        });
        return *this;
    }

    ipc_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_options, ipc_options_free>;
    ipc_options *p() const {
        if (!h_.get()) detail::throw_empty("options");
        return h_.get();
    }
    options &set(ipc_result r) {
        detail::check(r);
        return *this;
    }
    owner_t h_;
};

/// Settings of one subscription (`ipc_subscribe_options`): queue capacity and overflow.
class subscribe_options {
public:
    subscribe_options() {
        ipc_subscribe_options *p = nullptr;
        detail::check(ipc_subscribe_options_new(&p));
        h_ = owner_t(p);
    }
    subscribe_options &capacity(size_t n) {
        detail::check(ipc_subscribe_options_set_capacity(p(), n));
        return *this;
    }
    subscribe_options &overflow(ipc_overflow o) {
        detail::check(ipc_subscribe_options_set_overflow(p(), static_cast<int>(o)));
        return *this;
    }
    subscribe_options &report(report_handler fn) {
        detail::set_report(std::move(fn), [&](ipc_report_cb cb, void *ud, ipc_userdata_free_cb f) {
            return ipc_subscribe_options_set_report_cb(p(), cb, ud, f);
        });
        return *this;
    }
    ipc_subscribe_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_subscribe_options, ipc_subscribe_options_free>;
    ipc_subscribe_options *p() const {
        if (!h_.get()) detail::throw_empty("subscribe_options");
        return h_.get();
    }
    owner_t h_;
};

#if defined(IPC_FEATURE_QUEUES) || defined(IPC_FEATURE_RPC)
/// Settings of a worker (`ipc_worker_options`).
class worker_options {
public:
    worker_options() {
        ipc_worker_options *p = nullptr;
        detail::check(ipc_worker_options_new(&p));
        h_ = owner_t(p);
    }
    worker_options &concurrency(size_t n) { return set(ipc_worker_options_set_concurrency(p(), n)); }
    worker_options &block_timeout_ms(uint64_t ms) { return set(ipc_worker_options_set_block_timeout_ms(p(), ms)); }
    worker_options &reliable(bool on) { return set(ipc_worker_options_set_reliable(p(), on)); }
    worker_options &max_attempts(uint32_t n) { return set(ipc_worker_options_set_max_attempts(p(), n)); }
    worker_options &lease_ms(uint64_t ms) { return set(ipc_worker_options_set_lease_ms(p(), ms)); }
    worker_options &prefetch(size_t n) { return set(ipc_worker_options_set_prefetch(p(), n)); }
    /// Queue names are the Redis lists themselves (a redis-ipc fleet's `scooter:state`).
    worker_options &bare(bool on) { return set(ipc_worker_options_set_bare(p(), on)); }
    /// RPC servers: the wire (`IPC_PROTOCOL_REDIS_IPC`: the fleet's JSON envelopes).
    worker_options &protocol(ipc_protocol pr) {
        return set(ipc_worker_options_set_protocol(p(), static_cast<int>(pr)));
    }
    /// RPC servers: the version announced in the service registry.
    worker_options &version(const std::string &v) { return set(ipc_worker_options_set_version(p(), v.c_str())); }
    /// RPC servers: add a field announced in the service registry.
    worker_options &metadata(const std::string &name, const std::string &value) {
        return set(ipc_worker_options_add_metadata(p(), name.c_str(), value.c_str()));
    }
    /// Where the worker's (or server's) reports go (default: the client's).
    worker_options &report(report_handler fn) {
        detail::set_report(std::move(fn), [&](ipc_report_cb cb, void *ud, ipc_userdata_free_cb f) {
            return ipc_worker_options_set_report_cb(p(), cb, ud, f);
        });
        return *this;
    }
    ipc_worker_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_worker_options, ipc_worker_options_free>;
    ipc_worker_options *p() const {
        if (!h_.get()) detail::throw_empty("worker_options");
        return h_.get();
    }
    worker_options &set(ipc_result r) {
        detail::check(r);
        return *this;
    }
    owner_t h_;
};
#endif

#if defined(IPC_FEATURE_STREAMS)
/// Settings of a group consumer (`ipc_consumer_options`).
class consumer_options {
public:
    consumer_options() {
        ipc_consumer_options *p = nullptr;
        detail::check(ipc_consumer_options_new(&p));
        h_ = owner_t(p);
    }
    consumer_options &count(size_t n) { return set(ipc_consumer_options_set_count(p(), n)); }
    consumer_options &block_ms(uint64_t ms) { return set(ipc_consumer_options_set_block_ms(p(), ms)); }
    consumer_options &min_idle_ms(uint64_t ms) { return set(ipc_consumer_options_set_min_idle_ms(p(), ms)); }
    consumer_options &max_deliveries(uint64_t n) { return set(ipc_consumer_options_set_max_deliveries(p(), n)); }
    consumer_options &claim_interval_ms(uint64_t ms) {
        return set(ipc_consumer_options_set_claim_interval_ms(p(), ms));
    }
    consumer_options &report(report_handler fn) {
        detail::set_report(std::move(fn), [&](ipc_report_cb cb, void *ud, ipc_userdata_free_cb f) {
            return ipc_consumer_options_set_report_cb(p(), cb, ud, f);
        });
        return *this;
    }
    ipc_consumer_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_consumer_options, ipc_consumer_options_free>;
    ipc_consumer_options *p() const {
        if (!h_.get()) detail::throw_empty("consumer_options");
        return h_.get();
    }
    consumer_options &set(ipc_result r) {
        detail::check(r);
        return *this;
    }
    owner_t h_;
};
#endif

#if defined(IPC_FEATURE_STATE)
/// Settings of a hash watcher (`ipc_hash_watch_options`).
class hash_watch_options {
public:
    hash_watch_options() {
        ipc_hash_watch_options *p = nullptr;
        detail::check(ipc_hash_watch_options_new(&p));
        h_ = owner_t(p);
    }
    hash_watch_options &initial_sync(bool on) { return set(ipc_hash_watch_options_set_initial_sync(p(), on)); }
    hash_watch_options &debounce_ms(uint64_t ms) { return set(ipc_hash_watch_options_set_debounce_ms(p(), ms)); }
    /// Deliver every announcement, even of an unchanged value (as a fleet's watchers do).
    hash_watch_options &every_notification(bool on) {
        return set(ipc_hash_watch_options_set_every_notification(p(), on));
    }
    /// Follow `channel` instead of the channel named like the hash.
    hash_watch_options &channel(bytes_view channel) {
        return set(ipc_hash_watch_options_set_channel(p(), channel.data(), channel.size()));
    }
    hash_watch_options &report(report_handler fn) {
        detail::set_report(std::move(fn), [&](ipc_report_cb cb, void *ud, ipc_userdata_free_cb f) {
            return ipc_hash_watch_options_set_report_cb(p(), cb, ud, f);
        });
        return *this;
    }
    ipc_hash_watch_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_hash_watch_options, ipc_hash_watch_options_free>;
    ipc_hash_watch_options *p() const {
        if (!h_.get()) detail::throw_empty("hash_watch_options");
        return h_.get();
    }
    hash_watch_options &set(ipc_result r) {
        detail::check(r);
        return *this;
    }
    owner_t h_;
};
#endif

#if defined(IPC_FEATURE_RPC)
/// Settings of one RPC call (`ipc_call_options`): timeout, fail-fast, wire protocol.
class call_options {
public:
    call_options() {
        ipc_call_options *p = nullptr;
        detail::check(ipc_call_options_new(&p));
        h_ = owner_t(p);
    }
    call_options &timeout_ms(uint64_t ms) { return set(ipc_call_options_set_timeout_ms(p(), ms)); }
    call_options &fail_fast(bool on) { return set(ipc_call_options_set_fail_fast(p(), on)); }
    /// `IPC_PROTOCOL_REDIS_IPC`: call a redis-ipc fleet's list; the payload is JSON text.
    call_options &protocol(ipc_protocol pr) {
        return set(ipc_call_options_set_protocol(p(), static_cast<int>(pr)));
    }
    ipc_call_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_call_options, ipc_call_options_free>;
    ipc_call_options *p() const {
        if (!h_.get()) detail::throw_empty("call_options");
        return h_.get();
    }
    call_options &set(ipc_result r) {
        detail::check(r);
        return *this;
    }
    owner_t h_;
};
#endif

#if defined(IPC_FEATURE_STATE)
/// How a hash write is announced (`ipc_hash_write_options`): channel, `<field>:timestamp`,
/// announcement word. Default: redipc's (the hash's channel, each field, `*`, `cleared`).
class hash_write_options {
public:
    hash_write_options() {
        ipc_hash_write_options *p = nullptr;
        detail::check(ipc_hash_write_options_new(&p));
        h_ = owner_t(p);
    }
    hash_write_options &channel(bytes_view channel) {
        return set(ipc_hash_write_options_set_channel(p(), channel.data(), channel.size()));
    }
    hash_write_options &timestamp(ipc_timestamp_format f) {
        return set(ipc_hash_write_options_set_timestamp(p(), static_cast<int>(f)));
    }
    hash_write_options &announce(bytes_view word) {
        return set(ipc_hash_write_options_set_announce(p(), word.data(), word.size()));
    }
    ipc_hash_write_options *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_hash_write_options, ipc_hash_write_options_free>;
    ipc_hash_write_options *p() const {
        if (!h_.get()) detail::throw_empty("hash_write_options");
        return h_.get();
    }
    hash_write_options &set(ipc_result r) {
        detail::check(r);
        return *this;
    }
    owner_t h_;
};
#endif

// ---------------------------------------------------------------------------------------
// What callbacks receive (borrowed: valid only during the call)

namespace detail {
inline std::string_view sv(const char *p, size_t n) noexcept {
    return p ? std::string_view(p, n) : std::string_view();
}
}  // namespace detail

/// One event of a subscription.
class message {
public:
    explicit message(const ipc_message *m) noexcept : m_(m) {}
    ipc_event_kind kind() const noexcept { return m_->kind; }
    ipc_sub_kind sub_kind() const noexcept { return m_->sub_kind; }
    bool is_message() const noexcept { return m_->kind == IPC_EVENT_MESSAGE; }
    /// The channel (the confirmed name for activated/reactivated; empty for disconnected).
    std::string_view channel() const noexcept { return detail::sv(m_->channel, m_->channel_len); }
    /// The pattern of a pattern subscription.
    std::optional<std::string_view> pattern() const noexcept {
        if (!m_->pattern) return std::nullopt;
        return detail::sv(m_->pattern, m_->pattern_len);
    }
    /// The payload of a message (empty otherwise).
    std::string_view payload() const noexcept {
        return m_->kind == IPC_EVENT_DISCONNECTED ? std::string_view() : detail::sv(m_->payload, m_->payload_len);
    }
    /// The error text of IPC_EVENT_DISCONNECTED (empty otherwise).
    std::string_view error_text() const noexcept {
        return m_->kind == IPC_EVENT_DISCONNECTED ? detail::sv(m_->payload, m_->payload_len) : std::string_view();
    }
    const ipc_message *get() const noexcept { return m_; }

private:
    const ipc_message *m_;
};

#if defined(IPC_FEATURE_QUEUES)
/// A request handed to a worker's handler.
class request {
public:
    explicit request(const ipc_request *r) noexcept : r_(r) {}
    std::string_view queue() const noexcept { return detail::sv(r_->queue, r_->queue_len); }
    std::string_view payload() const noexcept { return detail::sv(r_->payload, r_->payload_len); }
    uint32_t attempt() const noexcept { return r_->attempt; }

private:
    const ipc_request *r_;
};
#endif

#if defined(IPC_FEATURE_RPC)
/// One RPC call as a server's handler sees it.
class call_info {
public:
    explicit call_info(const ipc_call_info *c) noexcept : c_(c) {}
    std::string_view method() const noexcept { return detail::sv(c_->method, c_->method_len); }
    std::string_view payload() const noexcept { return detail::sv(c_->payload, c_->payload_len); }
    /// When the caller stops waiting (wall clock).
    std::chrono::system_clock::time_point deadline() const noexcept {
        return std::chrono::system_clock::time_point(std::chrono::milliseconds(c_->deadline_ms));
    }
    uint64_t deadline_ms() const noexcept { return c_->deadline_ms; }

private:
    const ipc_call_info *c_;
};
#endif

#if defined(IPC_FEATURE_STREAMS)
/// A stream entry (borrowed from its `entries`, or from a consumer's handler call).
class entry {
public:
    explicit entry(const ipc_entry *e) noexcept : e_(e) {}
    std::string_view id() const noexcept { return e_->id; }
    size_t size() const noexcept { return e_->field_count; }
    /// Field `i`: (name, value).
    std::pair<std::string_view, std::string_view> field(size_t i) const {
        if (i >= e_->field_count) throw error(IPC_ERR_INVALID_ARGUMENT, "field index out of range");
        const ipc_field &f = e_->fields[i];
        return {std::string_view(f.name, f.name_len), detail::sv(f.value, f.value_len)};
    }
    /// The value of the first field `name`.
    std::optional<std::string_view> get(bytes_view name) const {
        const char *v = nullptr;
        size_t n = 0;
        bool found = false;
        detail::check(ipc_entry_get(e_, name.data(), name.size(), &v, &n, &found));
        if (!found) return std::nullopt;
        return detail::sv(v, n);
    }
    uint64_t deliveries() const noexcept { return e_->deliveries; }
    const ipc_entry *raw() const noexcept { return e_; }

private:
    const ipc_entry *e_;
};
#endif

#if defined(IPC_FEATURE_STREAMS)
/// An owned list of stream entries (`ipc_entries`), oldest first.
class entries {
public:
    explicit entries(ipc_entries *p) noexcept : h_(p) {}
    size_t size() const noexcept { return ipc_entries_len(h_.get()); }
    bool empty() const noexcept { return size() == 0; }
    entry operator[](size_t i) const {
        const ipc_entry *e = ipc_entries_get(h_.get(), i);
        if (!e) throw error(IPC_ERR_INVALID_ARGUMENT, ipc_last_error_message());
        return entry(e);
    }
    void reset() noexcept { h_.reset(); }
    ipc_entries *get() const noexcept { return h_.get(); }

private:
    detail::owner<ipc_entries, ipc_entries_free> h_;
};
#endif

#if defined(IPC_FEATURE_STREAMS) || defined(IPC_FEATURE_STATE)
/// Field values for `stream_publish` and `hash_set_many`: (name, value) pairs, borrowed.
using field_list = std::vector<std::pair<bytes_view, bytes_view>>;

namespace detail {
inline std::vector<ipc_field> fields(const field_list &l) {
    std::vector<ipc_field> out;
    out.reserve(l.size());
    for (const auto &kv : l) out.push_back(ipc_field{kv.first.data(), kv.first.size(), kv.second.data(), kv.second.size()});
    return out;
}
}  // namespace detail
#endif

// ---------------------------------------------------------------------------------------
// Handles made by a client

using message_handler = std::function<void(const message &)>;
#if defined(IPC_FEATURE_QUEUES)
using request_handler = std::function<void(const request &)>;
#endif
#if defined(IPC_FEATURE_RPC)
using rpc_handler = std::function<std::string(const call_info &)>;
#endif
#if defined(IPC_FEATURE_STREAMS)
using entry_handler = std::function<void(const entry &)>;
#endif
using field_handler = std::function<void(std::string_view field, std::optional<std::string_view> value)>;
/// A payload on a watched hash's channel that is not a field (a fleet's `seatbox:opened`).
using event_handler = std::function<void(std::string_view payload)>;
#if defined(IPC_FEATURE_RPC)
/// The handlers of `client::serve_methods()`, by method name.
using method_map = std::vector<std::pair<std::string, rpc_handler>>;
#endif
using key_event_handler = std::function<void(std::string_view key, std::string_view event)>;

namespace detail {

inline void message_trampoline(void *userdata, const ipc_message *m) noexcept {
    try {
        static_cast<box<message_handler> *>(userdata)->fn(message(m));
    } catch (...) {
        report("a subscription callback");
    }
}

#if defined(IPC_FEATURE_QUEUES)
inline int request_trampoline(void *userdata, const ipc_request *r, ipc_error_out *err) noexcept {
    try {
        static_cast<box<request_handler> *>(userdata)->fn(request(r));
        return 0;
    } catch (...) {
        ignore(ipc_error_set(err, current_text().c_str()));
        return 1;
    }
}
#endif

#if defined(IPC_FEATURE_RPC)
/// Hand a handler's answer to the library; if that fails, its message (copied first: it is
/// valid only until the next redipc call) is the handler's error.
inline int rpc_answer(const std::string &answer, ipc_rpc_reply *out, ipc_error_out *err) {
    if (ipc_rpc_reply_set(out, answer.data(), answer.size()) == IPC_OK) return 0;
    std::string why = ipc_last_error_message();
    ignore(ipc_error_set(err, why.c_str()));
    return 1;
}
#endif

#if defined(IPC_FEATURE_RPC)
inline int rpc_trampoline(void *userdata, const ipc_call_info *c, ipc_rpc_reply *out,
                          ipc_error_out *err) noexcept {
    try {
        return rpc_answer(static_cast<box<rpc_handler> *>(userdata)->fn(call_info(c)), out, err);
    } catch (...) {
        ignore(ipc_error_set(err, current_text().c_str()));
        return 1;
    }
}
#endif

#if defined(IPC_FEATURE_RPC)
/// The table of `client::serve_methods()`: every method's entry points at one trampoline,
/// which picks the handler by the call's method (the library only calls known ones).
struct method_table {
    method_map methods;
};
#endif

#if defined(IPC_FEATURE_RPC)
inline int method_trampoline(void *userdata, const ipc_call_info *c, ipc_rpc_reply *out,
                             ipc_error_out *err) noexcept {
    try {
        call_info info(c);
        for (auto &m : static_cast<method_table *>(userdata)->methods) {
            if (m.first == info.method()) return rpc_answer(m.second(info), out, err);
        }
        ignore(ipc_error_set(err, "no handler for this method"));
        return 1;
    } catch (...) {
        ignore(ipc_error_set(err, current_text().c_str()));
        return 1;
    }
}
#endif

#if defined(IPC_FEATURE_RPC)
inline void free_method_table(void *userdata) noexcept { delete static_cast<method_table *>(userdata); }
#endif

#if defined(IPC_FEATURE_STREAMS)
inline int entry_trampoline(void *userdata, const ipc_entry *e, ipc_error_out *err) noexcept {
    try {
        static_cast<box<entry_handler> *>(userdata)->fn(entry(e));
        return 0;
    } catch (...) {
        ignore(ipc_error_set(err, current_text().c_str()));
        return 1;
    }
}
#endif

#if defined(IPC_FEATURE_STATE)
/// The callbacks of one hash watcher (its `userdata`).
struct hash_handlers {
    field_handler field;
    event_handler event;
};
#endif

#if defined(IPC_FEATURE_STATE)
inline void field_trampoline(void *userdata, const char *field, size_t flen, const char *value,
                             size_t vlen) noexcept {
    try {
        std::optional<std::string_view> v;
        if (value) v = sv(value, vlen);
        static_cast<hash_handlers *>(userdata)->field(std::string_view(field, flen), v);
    } catch (...) {
        report("a hash watcher callback");
    }
}
#endif

#if defined(IPC_FEATURE_STATE)
inline void hash_event_trampoline(void *userdata, const char *payload, size_t len) noexcept {
    try {
        static_cast<hash_handlers *>(userdata)->event(std::string_view(payload, len));
    } catch (...) {
        report("a hash watcher event callback");
    }
}
#endif

#if defined(IPC_FEATURE_STATE)
inline void free_hash_handlers(void *userdata) noexcept { delete static_cast<hash_handlers *>(userdata); }
#endif

inline void key_event_trampoline(void *userdata, const char *key, size_t klen, const char *event) noexcept {
    try {
        static_cast<box<key_event_handler> *>(userdata)->fn(std::string_view(key, klen),
                                                            std::string_view(event ? event : ""));
    } catch (...) {
        report("a keyspace watch callback");
    }
}

/// Runs `start(userdata, userdata_free)`, the C call that takes the box; on failure the
/// library did not take it and it is deleted here.
template <class F, class Start>
void start_with_box(F fn, Start start) {
    if (!fn) throw error(IPC_ERR_NULL_ARG, "an empty std::function was given as a callback");
    auto b = std::make_unique<box<F>>(box<F>{std::move(fn)});
    check(start(static_cast<void *>(b.get()), &free_box<F>));
    b.release();  // owned by the library now; userdata_free deletes it
}

}  // namespace detail

/// A subscription: destroying it (or `reset()`) unsubscribes; after that returns, no call
/// of its callback runs or will run.
class subscription {
public:
    subscription() noexcept = default;
    explicit subscription(ipc_subscription *p) noexcept : h_(p) {}

    /// Add names (waits for the server's confirmation).
    void add(const names &n) {
        auto ptrs = n.c_strs();
        auto lens = n.lens();
        detail::check(ipc_subscription_add(p(), ptrs.data(), lens.data(), ptrs.size()));
    }
    /// Remove names (does not wait).
    void remove(const names &n) {
        auto ptrs = n.c_strs();
        auto lens = n.lens();
        detail::check(ipc_subscription_remove(p(), ptrs.data(), lens.data(), ptrs.size()));
    }
    /// Unsubscribe and stop the callback, waiting up to `timeout_ms` for a running call
    /// (IPC_ERR_TIMEOUT); from inside its own callback it only asks.
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_subscription_stop(p(), timeout_ms)); }
    ipc_sub_stats stats() const {
        ipc_sub_stats s{};
        detail::check(ipc_subscription_stats(p(), &s));
        return s;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_subscription *get() const noexcept { return h_.get(); }

private:
    ipc_subscription *p() const {
        if (!h_.get()) detail::throw_empty("subscription");
        return h_.get();
    }
    detail::owner<ipc_subscription, ipc_subscription_free> h_;
};

/// A Lua script run by its SHA1 (`client::run_script()`, `batch::add_script()`): `EVALSHA`,
/// and `EVAL` once more when the server does not know it (`NOSCRIPT`). Usable by any number
/// of threads at once.
class script {
public:
    script() noexcept = default;
    /// A script from its Lua source (nothing is sent).
    explicit script(bytes_view source) {
        ipc_script *out = nullptr;
        detail::check(ipc_script_new(source.data(), source.size(), &out));
        h_ = owner_t(out);
    }
    /// Its SHA1 in hex (what `SCRIPT LOAD` answers).
    std::string_view sha() const { return ipc_script_sha(p()); }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_script *get() const noexcept { return h_.get(); }

private:
    using owner_t = detail::owner<ipc_script, ipc_script_free>;
    ipc_script *p() const {
        if (!h_.get()) detail::throw_empty("script");
        return h_.get();
    }
    owner_t h_;
};

/// A batch of commands (`client::batch()`, `client::tx()`, `client::pipeline()`): sent in
/// one write; atomic (`MULTI`/`EXEC`) or a plain pipeline.
class batch {
public:
    batch() noexcept = default;
    explicit batch(ipc_batch *p) noexcept : h_(p) {}

    /// Queue a command (copied; nothing is sent).
    template <class... A>
    batch &add(const A &...a) {
        std::array<arg, sizeof...(A)> args{arg(a)...};
        return add_args(args.begin(), args.end());
    }
    batch &add(const std::vector<arg> &args) { return add_args(args.begin(), args.end()); }
    /// Queue a run of `s` with `keys` and `args` (copied; its reply takes its slot).
    batch &add_script(const script &s, const std::vector<arg> &keys = {}, const std::vector<arg> &args = {}) {
        detail::argv k(keys.begin(), keys.end()), a(args.begin(), args.end());
        detail::check(ipc_batch_add_script(p(), s.get(), k.ptrs.data(), k.lens.data(), k.ptrs.size(), a.ptrs.data(),
                                           a.lens.data(), a.ptrs.size()));
        return *this;
    }

    /// Run the queued commands: one result per command, in order, a failed command as an
    /// IPC_REPLY_ERROR element. The commands stay queued (`clear()` to start over).
    reply exec() const {
        ipc_reply *out = nullptr;
        detail::check(ipc_batch_exec(p(), &out));
        return reply(out);
    }
    size_t size() const noexcept { return ipc_batch_len(h_.get()); }
    void clear() { detail::check(ipc_batch_clear(p())); }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_batch *get() const noexcept { return h_.get(); }

private:
    template <class It>
    batch &add_args(It first, It last) {
        detail::argv v(first, last);
        detail::check(ipc_batch_add(p(), v.ptrs.data(), v.lens.data(), v.ptrs.size()));
        return *this;
    }
    ipc_batch *p() const {
        if (!h_.get()) detail::throw_empty("batch");
        return h_.get();
    }
    detail::owner<ipc_batch, ipc_batch_free> h_;
};

/// The optimistic transaction in progress, given to the function of
/// `client::transaction()`; valid only during that call.
class watch_session {
public:
    explicit watch_session(ipc_watch *w) noexcept : w_(w) {}
    /// Run a command now on the watching connection (read a watched key).
    template <class... A>
    reply command(const A &...a) {
        std::array<arg, sizeof...(A)> args{arg(a)...};
        detail::argv v(args.begin(), args.end());
        ipc_reply *out = nullptr;
        detail::check(ipc_watch_command(w_, v.ptrs.data(), v.lens.data(), v.ptrs.size(), &out));
        return reply(out);
    }
    /// Queue a command for the MULTI/EXEC that follows when the function returns true.
    template <class... A>
    watch_session &queue(const A &...a) {
        std::array<arg, sizeof...(A)> args{arg(a)...};
        detail::argv v(args.begin(), args.end());
        detail::check(ipc_watch_queue(w_, v.ptrs.data(), v.lens.data(), v.ptrs.size()));
        return *this;
    }

private:
    ipc_watch *w_;
};

using transaction_fn = std::function<bool(watch_session &)>;

namespace detail {
struct transaction_box {
    transaction_fn fn;
    std::exception_ptr error;
};

inline int transaction_trampoline(void *userdata, ipc_watch *w) noexcept {
    auto *b = static_cast<transaction_box *>(userdata);
    try {
        watch_session s(w);
        return b->fn(s) ? 0 : 1;
    } catch (...) {
        b->error = std::current_exception();
        return 1;
    }
}
}  // namespace detail

#if defined(IPC_FEATURE_QUEUES)
/// A running worker (`client::worker()`); destroying it stops it (waiting up to 10 s for
/// running handlers) and frees it.
class worker {
public:
    worker() noexcept = default;
    explicit worker(ipc_worker *p) noexcept : h_(p) {}
    /// Stop taking requests and wait up to `timeout_ms` for running handlers
    /// (IPC_ERR_TIMEOUT); from inside one of its handlers it only asks.
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_worker_stop(p(), timeout_ms)); }
    ipc_worker_counts stats() const {
        ipc_worker_counts s{};
        detail::check(ipc_worker_stats(p(), &s));
        return s;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_worker *get() const noexcept { return h_.get(); }

private:
    ipc_worker *p() const {
        if (!h_.get()) detail::throw_empty("worker");
        return h_.get();
    }
    detail::owner<ipc_worker, ipc_worker_free> h_;
};
#endif

#if defined(IPC_FEATURE_RPC)
/// A running RPC server (`client::serve()`); destroying it stops and frees it.
class server {
public:
    server() noexcept = default;
    explicit server(ipc_server *p) noexcept : h_(p) {}
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_server_stop(p(), timeout_ms)); }
    ipc_worker_counts stats() const {
        ipc_worker_counts s{};
        detail::check(ipc_server_stats(p(), &s));
        return s;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_server *get() const noexcept { return h_.get(); }

private:
    ipc_server *p() const {
        if (!h_.get()) detail::throw_empty("server");
        return h_.get();
    }
    detail::owner<ipc_server, ipc_server_free> h_;
};
#endif

#if defined(IPC_FEATURE_COORDINATION)
/// A held lock (`client::lock()`); destroying it releases it if still held.
class lock {
public:
    lock() noexcept = default;
    explicit lock(ipc_lock *p) noexcept : h_(p) {}
    /// The fencing token.
    uint64_t token() const {
        uint64_t t = 0;
        detail::check(ipc_lock_token(p(), &t));
        return t;
    }
    /// Extend to `ttl_ms` from now; false if the lock was no longer ours.
    bool extend(uint64_t ttl_ms) {
        bool held = false;
        detail::check(ipc_lock_extend(p(), ttl_ms, &held));
        return held;
    }
    /// Release it; false if it had expired.
    bool release() {
        bool held = false;
        detail::check(ipc_lock_release(p(), &held));
        return held;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_lock *get() const noexcept { return h_.get(); }

private:
    ipc_lock *p() const {
        if (!h_.get()) detail::throw_empty("lock");
        return h_.get();
    }
    detail::owner<ipc_lock, ipc_lock_free> h_;
};
#endif

#if defined(IPC_FEATURE_COORDINATION)
/// A rate limiter shared by every process using its name (`client::rate_limiter()`).
class rate_limiter {
public:
    rate_limiter() noexcept = default;
    explicit rate_limiter(ipc_rate_limiter *p) noexcept : h_(p) {}
    /// Take `n` units if allowed now: nullopt when taken, else how long until they would
    /// pass, in microseconds (nothing taken).
    std::optional<uint64_t> acquire(uint64_t n = 1) const {
        bool allowed = false;
        uint64_t retry_after_us = 0;
        detail::check(ipc_rate_limiter_acquire(p(), n, &allowed, &retry_after_us));
        if (allowed) return std::nullopt;
        return retry_after_us;
    }
    /// Take `n` units, sleeping the retry-after the server names (`timeout_ms` negative: as
    /// long as it takes); false when the timeout came first.
    bool acquire_wait(uint64_t n = 1, int64_t timeout_ms = -1) const {
        bool acquired = false;
        detail::check(ipc_rate_limiter_acquire_wait(p(), n, timeout_ms, &acquired));
        return acquired;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_rate_limiter *get() const noexcept { return h_.get(); }

private:
    ipc_rate_limiter *p() const {
        if (!h_.get()) detail::throw_empty("rate_limiter");
        return h_.get();
    }
    detail::owner<ipc_rate_limiter, ipc_rate_limiter_free> h_;
};
#endif

#if defined(IPC_FEATURE_COORDINATION)
/// A held permit of a semaphore (`semaphore::acquire()`); destroying it releases it if
/// still held.
class permit {
public:
    permit() noexcept = default;
    explicit permit(ipc_permit *p) noexcept : h_(p) {}
    /// Its id (random, unique).
    std::string_view id() const { return ipc_permit_id(p()); }
    /// Extend the lease to `lease_ms` from now; false if the permit was no longer ours.
    bool extend(uint64_t lease_ms) {
        bool held = false;
        detail::check(ipc_permit_extend(p(), lease_ms, &held));
        return held;
    }
    /// Give it back; false if its lease had ended.
    bool release() {
        bool held = false;
        detail::check(ipc_permit_release(p(), &held));
        return held;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_permit *get() const noexcept { return h_.get(); }

private:
    ipc_permit *p() const {
        if (!h_.get()) detail::throw_empty("permit");
        return h_.get();
    }
    detail::owner<ipc_permit, ipc_permit_free> h_;
};
#endif

#if defined(IPC_FEATURE_COORDINATION)
/// A counting semaphore with leases, shared by every process using its name
/// (`client::semaphore()`).
class semaphore {
public:
    semaphore() noexcept = default;
    explicit semaphore(ipc_semaphore *p) noexcept : h_(p) {}
    /// Take a permit, waiting up to `timeout_ms` (negative: as long as it takes; 0: try
    /// once); IPC_ERR_TIMEOUT when none came.
    permit acquire(int64_t timeout_ms = -1) const {
        ipc_permit *out = nullptr;
        detail::check(ipc_semaphore_acquire(p(), timeout_ms, &out));
        return permit(out);
    }
    /// How many permits are held now.
    uint64_t held() const {
        uint64_t n = 0;
        detail::check(ipc_semaphore_held(p(), &n));
        return n;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_semaphore *get() const noexcept { return h_.get(); }

private:
    ipc_semaphore *p() const {
        if (!h_.get()) detail::throw_empty("semaphore");
        return h_.get();
    }
    detail::owner<ipc_semaphore, ipc_semaphore_free> h_;
};
#endif

#if defined(IPC_FEATURE_REGISTRY)
/// One live RPC server of a service, as the registry knows it (`client::instances()`).
struct instance {
    std::string service;
    std::string id;
    std::string version;
    std::string host;
    uint32_t pid = 0;
    uint64_t started_ms = 0;
    uint64_t expires_in_ms = 0;
    std::vector<std::pair<std::string, std::string>> metadata;
};
#endif

#if defined(IPC_FEATURE_STREAMS)
/// Follows a stream (`client::stream_follow()`).
class stream_follower {
public:
    stream_follower() noexcept = default;
    explicit stream_follower(ipc_stream_follower *p) noexcept : h_(p) {}
    /// The next entry (a list of 0 or 1), waiting up to `timeout_ms`.
    entries next(uint64_t timeout_ms) {
        ipc_entries *out = nullptr;
        detail::check(ipc_stream_follower_next(p(), timeout_ms, &out));
        return entries(out);
    }
    /// The id of the last entry returned (or the starting id).
    std::string position() const {
        char buf[IPC_STREAM_ID_MAX];
        detail::check(ipc_stream_follower_position(p(), buf, sizeof buf));
        return buf;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_stream_follower *get() const noexcept { return h_.get(); }

private:
    ipc_stream_follower *p() const {
        if (!h_.get()) detail::throw_empty("stream_follower");
        return h_.get();
    }
    detail::owner<ipc_stream_follower, ipc_stream_follower_free> h_;
};
#endif

#if defined(IPC_FEATURE_STREAMS)
/// A running group consumer (`client::stream_consume()`).
class stream_consumer {
public:
    stream_consumer() noexcept = default;
    explicit stream_consumer(ipc_stream_consumer *p) noexcept : h_(p) {}
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_stream_consumer_stop(p(), timeout_ms)); }
    ipc_consumer_stats stats() const {
        ipc_consumer_stats s{};
        detail::check(ipc_stream_consumer_stats(p(), &s));
        return s;
    }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_stream_consumer *get() const noexcept { return h_.get(); }

private:
    ipc_stream_consumer *p() const {
        if (!h_.get()) detail::throw_empty("stream_consumer");
        return h_.get();
    }
    detail::owner<ipc_stream_consumer, ipc_stream_consumer_free> h_;
};
#endif

#if defined(IPC_FEATURE_STATE)
/// A hash watcher (`client::hash_watch()`); destroying it stops it.
class hash_watcher {
public:
    hash_watcher() noexcept = default;
    explicit hash_watcher(ipc_hash_watcher *p) noexcept : h_(p) {}
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_hash_watcher_stop(p(), timeout_ms)); }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_hash_watcher *get() const noexcept { return h_.get(); }

private:
    ipc_hash_watcher *p() const {
        if (!h_.get()) detail::throw_empty("hash_watcher");
        return h_.get();
    }
    detail::owner<ipc_hash_watcher, ipc_hash_watcher_free> h_;
};
#endif

/// A keyspace watch (`client::watch_keys()`); destroying it unsubscribes.
class key_watch {
public:
    key_watch() noexcept = default;
    explicit key_watch(ipc_key_watch *p) noexcept : h_(p) {}
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_key_watch_stop(p(), timeout_ms)); }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_key_watch *get() const noexcept { return h_.get(); }

private:
    ipc_key_watch *p() const {
        if (!h_.get()) detail::throw_empty("key_watch");
        return h_.get();
    }
    detail::owner<ipc_key_watch, ipc_key_watch_free> h_;
};

/// A subscription group (`client::subscribe_group()`): one channel subscription, a callback
/// per channel. Destroying it unsubscribes; after that returns, no callback of it runs.
class group {
public:
    group() noexcept = default;
    explicit group(ipc_group *p) noexcept : h_(p) {}
    /// Handle `channel` with `cb` (replacing its earlier callback) and subscribe to it.
    void handle(bytes_view channel, message_handler cb) {
        ipc_group *g = p();
        detail::start_with_box(std::move(cb), [&](void *ud, ipc_userdata_free_cb free_ud) {
            return ipc_group_handle(g, channel.data(), channel.size(), &detail::message_trampoline, ud, free_ud);
        });
    }
    /// Stop handling `channel` and unsubscribe from it.
    void unhandle(bytes_view channel) { detail::check(ipc_group_unhandle(p(), channel.data(), channel.size())); }
    void stop(uint64_t timeout_ms = 10000) { detail::check(ipc_group_stop(p(), timeout_ms)); }
    void reset() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_group *get() const noexcept { return h_.get(); }

private:
    ipc_group *p() const {
        if (!h_.get()) detail::throw_empty("group");
        return h_.get();
    }
    detail::owner<ipc_group, ipc_group_free> h_;
};

// ---------------------------------------------------------------------------------------
// The client

/// A connection to one Redis server, shared by every thread (`ipc_client`).
class client {
public:
    client() noexcept = default;
    /// Connect: `redis://[user:password@]host[:port][/db]`, `rediss://` (TLS, see the
    /// `tls_*` options), `redis-sentinel://host:26379,host2:26379/db#master` (Sentinel) or
    /// `unix:///path.sock`.
    explicit client(const std::string &url) { connect(url, nullptr); }
    client(const std::string &url, const options &opts) { connect(url, opts.get()); }
    /// Take ownership of a C handle.
    explicit client(ipc_client *p) noexcept : h_(p) {}

    /// `ipc_client_close()`: calls that start from now on (on any thread) fail with
    /// IPC_ERR_CLOSED, a waiting `poll()` returns, the subscriptions end, and calls in flight
    /// on other threads (a `BLPOP` waiting forever included) end at once with
    /// IPC_ERR_CLOSED. The handle stays allocated until destroyed (or `reset()`).
    void close() { detail::check(ipc_client_close(p())); }
    void reset() noexcept { h_.reset(); }
    bool is_connected() const { return ipc_client_is_connected(p()); }

    /// The client's counters (`ipc_client_stats`): commands, failures (`failed`, and by code:
    /// `failed_server`, ...), reconnects, bytes, calls in flight, pub/sub messages, latency
    /// quantiles in microseconds.
    ipc_client_counts stats() const {
        ipc_client_counts s{};
        s.size = sizeof s;
        detail::check(ipc_client_stats(p(), &s));
        return s;
    }
    /// The latency histogram's non-empty buckets, ascending: (upper bound in microseconds,
    /// count of successful calls that took at most that long).
    std::vector<std::pair<uint64_t, uint64_t>> latency_histogram() const {
        std::vector<uint64_t> upper, counts;
        size_t len = 0;
        ipc_result r;
        while ((r = ipc_client_latency_histogram(p(), upper.data(), counts.data(), upper.size(), &len)) ==
               IPC_ERR_BUFFER_TOO_SMALL) {
            upper.resize(len);  // buckets appeared since: room for them all
            counts.resize(len);
        }
        detail::check(r);
        std::vector<std::pair<uint64_t, uint64_t>> out;
        out.reserve(len);
        for (size_t i = 0; i < len; ++i) out.emplace_back(upper[i], counts[i]);
        return out;
    }
    explicit operator bool() const noexcept { return h_.get() != nullptr; }
    ipc_client *get() const noexcept { return h_.get(); }

    // -- commands

    /// Any command: `c.command("HSET", "h", "f", 42)`. An error reply throws IPC_ERR_SERVER.
    template <class... A>
    reply command(const A &...a) const {
        std::array<arg, sizeof...(A)> args{arg(a)...};
        return command_args(args.begin(), args.end());
    }
    reply command(const std::vector<arg> &args) const { return command_args(args.begin(), args.end()); }

    void ping() const { detail::check(ipc_ping(p())); }

    std::optional<std::string> get(bytes_view key) const {
        return take(
            [&](char **b, size_t *n, bool *f) { return ipc_get(p(), key.data(), key.size(), b, n, f); });
    }
    void set(bytes_view key, bytes_view value, uint64_t ttl_ms = 0) const {
        detail::check(ipc_set(p(), key.data(), key.size(), value.data(), value.size(), ttl_ms));
    }
    /// SET with IPC_SET_NX / IPC_SET_XX flags: whether it was set.
    bool set_ex(bytes_view key, bytes_view value, uint64_t ttl_ms, uint32_t flags) const {
        bool was = false;
        detail::check(ipc_set_ex(p(), key.data(), key.size(), value.data(), value.size(), ttl_ms, flags, &was));
        return was;
    }
    int64_t incr(bytes_view key, int64_t by = 1) const {
        int64_t v = 0;
        if (by == 1)
            detail::check(ipc_incr(p(), key.data(), key.size(), &v));
        else
            detail::check(ipc_incrby(p(), key.data(), key.size(), by, &v));
        return v;
    }
    /// DEL: 1 if the key existed.
    int64_t del(bytes_view key) const {
        int64_t n = 0;
        detail::check(ipc_del(p(), key.data(), key.size(), &n));
        return n;
    }
    std::optional<std::string> hget(bytes_view key, bytes_view field) const {
        return take([&](char **b, size_t *n, bool *f) {
            return ipc_hget(p(), key.data(), key.size(), field.data(), field.size(), b, n, f);
        });
    }
    /// HSET one field: 1 if new.
    int64_t hset(bytes_view key, bytes_view field, bytes_view value) const {
        int64_t n = 0;
        detail::check(ipc_hset(p(), key.data(), key.size(), field.data(), field.size(), value.data(), value.size(), &n));
        return n;
    }
    /// PUBLISH: the number of receivers.
    int64_t publish(bytes_view channel, bytes_view msg) const {
        int64_t n = 0;
        detail::check(ipc_publish(p(), channel.data(), channel.size(), msg.data(), msg.size(), &n));
        return n;
    }
    int64_t spublish(bytes_view channel, bytes_view msg) const {
        int64_t n = 0;
        detail::check(ipc_spublish(p(), channel.data(), channel.size(), msg.data(), msg.size(), &n));
        return n;
    }

    // -- pub/sub

    /// Subscribe (`kind`: channels, patterns or shard channels), calling `cb` for every
    /// event on a library thread (in poll mode: inside `poll()`).
    subscription subscribe(const names &channels, message_handler cb, ipc_sub_kind kind = IPC_SUB_CHANNEL) const {
        return subscribe_impl(channels, std::move(cb), kind, nullptr);
    }
    subscription subscribe(const names &channels, message_handler cb, ipc_sub_kind kind,
                           const subscribe_options &opts) const {
        return subscribe_impl(channels, std::move(cb), kind, opts.get());
    }
    subscription psubscribe(const names &patterns, message_handler cb) const {
        return subscribe(patterns, std::move(cb), IPC_SUB_PATTERN);
    }
    subscription ssubscribe(const names &channels, message_handler cb) const {
        return subscribe(channels, std::move(cb), IPC_SUB_SHARD);
    }
    /// Poll mode: run waiting callbacks here, waiting up to `timeout_ms` (negative: no
    /// limit); the number of events run.
    size_t poll(int timeout_ms) const {
        size_t n = 0;
        detail::check(ipc_client_poll(p(), timeout_ms, &n));
        return n;
    }
    /// Poll mode: the descriptor that is readable when `poll()` has work.
    int fd() const {
        int fd = -1;
        detail::check(ipc_client_fd(p(), &fd));
        return fd;
    }

private:
    subscription subscribe_impl(const names &channels, message_handler cb, ipc_sub_kind kind,
                                const ipc_subscribe_options *opts) const {
        auto ptrs = channels.c_strs();
        auto lens = channels.lens();
        ipc_subscription *out = nullptr;
        detail::start_with_box(std::move(cb), [&](void *ud, ipc_userdata_free_cb free_ud) {
            return ipc_subscribe(p(), static_cast<int>(kind), ptrs.data(), lens.data(), ptrs.size(), opts,
                                 &detail::message_trampoline, ud, free_ud, &out);
        });
        return subscription(out);
    }

public:
    /// A subscription group: one subscription, a callback per channel (`group::handle()`).
    redipc::group subscribe_group() const { return subscribe_group_impl(nullptr); }
    redipc::group subscribe_group(const subscribe_options &opts) const { return subscribe_group_impl(opts.get()); }

private:
    redipc::group subscribe_group_impl(const ipc_subscribe_options *opts) const {
        ipc_group *out = nullptr;
        detail::check(ipc_subscribe_group(p(), opts, &out));
        return redipc::group(out);
    }

public:

    // -- transactions

    /// A batch: a MULTI/EXEC transaction when `atomic`, else a pipeline.
    redipc::batch batch(bool atomic) const {
        ipc_batch *out = nullptr;
        detail::check(ipc_batch_new(p(), atomic, &out));
        return redipc::batch(out);
    }
    /// `batch(true)`.
    redipc::batch tx() const { return batch(true); }
    /// `batch(false)`.
    redipc::batch pipeline() const { return batch(false); }
    /// WATCH `keys`, call `fn` (read with `s.command()`, queue with `s.queue()`; return
    /// true to EXEC, false to abort with IPC_ERR_TX_ABORTED), MULTI/EXEC; start over when a
    /// watched key changed (IPC_ERR_WATCH after `max_retries`). `fn` runs on this thread;
    /// an exception it throws aborts and is rethrown here.
    reply transaction(const names &keys, transaction_fn fn, size_t max_retries = 10) const {
        auto ptrs = keys.c_strs();
        auto lens = keys.lens();
        detail::transaction_box b{std::move(fn), nullptr};
        if (!b.fn) throw error(IPC_ERR_NULL_ARG, "an empty std::function was given to transaction()");
        ipc_reply *out = nullptr;
        ipc_result r = ipc_transaction(p(), ptrs.data(), lens.data(), ptrs.size(), max_retries,
                                       &detail::transaction_trampoline, &b, &out);
        if (b.error) {
            if (r == IPC_OK) ipc_reply_free(out);
            std::rethrow_exception(b.error);
        }
        detail::check(r);
        return reply(out);
    }

#if defined(IPC_FEATURE_QUEUES)
    // -- request queues

    void send_request(bytes_view queue, bytes_view payload) const {
        detail::check(ipc_send_request(p(), queue.data(), queue.size(), payload.data(), payload.size()));
    }
    /// LPUSH to the list itself (a redis-ipc fleet's `scooter:state`; a bare worker takes it).
    void send_request_bare(bytes_view list, bytes_view payload) const {
        detail::check(ipc_send_request_bare(p(), list.data(), list.size(), payload.data(), payload.size()));
    }
    /// Start a worker: `handler` returning is success, throwing is a failure (its `what()`
    /// is the error text).
    redipc::worker worker(const names &queues, request_handler handler) const {
        return worker_impl(queues, std::move(handler), nullptr);
    }
    redipc::worker worker(const names &queues, request_handler handler, const worker_options &opts) const {
        return worker_impl(queues, std::move(handler), opts.get());
    }

private:
    redipc::worker worker_impl(const names &queues, request_handler handler, const ipc_worker_options *opts) const {
        auto ptrs = queues.c_strs();
        auto lens = queues.lens();
        ipc_worker *out = nullptr;
        detail::start_with_box(std::move(handler), [&](void *ud, ipc_userdata_free_cb free_ud) {
            return ipc_worker_new(p(), ptrs.data(), lens.data(), ptrs.size(), opts, &detail::request_trampoline, ud,
                                  free_ud, &out);
        });
        return redipc::worker(out);
    }

public:
    ipc_queue_counts queue_stats(bytes_view queue) const {
        ipc_queue_counts c{};
        detail::check(ipc_queue_stats(p(), queue.data(), queue.size(), &c));
        return c;
    }
    /// A request due `delay_ms` from now (a worker of the queue moves it in when due).
    void send_request_delayed(bytes_view queue, bytes_view payload, uint64_t delay_ms) const {
        detail::check(
            ipc_send_request_delayed(p(), queue.data(), queue.size(), payload.data(), payload.size(), delay_ms));
    }
    /// A request due at `unix_ms` (milliseconds since the Unix epoch, the server's clock).
    void send_request_at(bytes_view queue, bytes_view payload, uint64_t unix_ms) const {
        detail::check(ipc_send_request_at(p(), queue.data(), queue.size(), payload.data(), payload.size(), unix_ms));
    }
#endif

    // -- coordination

    /// Run `s` with `keys` and `args` (`EVALSHA`; `EVAL` again after `NOSCRIPT`).
    reply run_script(const script &s, const std::vector<arg> &keys = {}, const std::vector<arg> &args = {}) const {
        detail::argv k(keys.begin(), keys.end()), a(args.begin(), args.end());
        ipc_reply *out = nullptr;
        detail::check(ipc_script_run(p(), s.get(), k.ptrs.data(), k.lens.data(), k.ptrs.size(), a.ptrs.data(),
                                     a.lens.data(), a.ptrs.size(), &out));
        return reply(out);
    }
#if defined(IPC_FEATURE_COORDINATION)
    /// A rate limiter: `rate` units per `per_ms`, `burst` at once (0: the rate).
    redipc::rate_limiter rate_limiter(bytes_view name, double rate, uint64_t per_ms = 1000, uint64_t burst = 0) const {
        ipc_rate_limiter *out = nullptr;
        detail::check(ipc_rate_limiter_new(p(), name.data(), name.size(), rate, per_ms, burst, &out));
        return redipc::rate_limiter(out);
    }
#endif
#if defined(IPC_FEATURE_COORDINATION)
    /// A semaphore of `permits` permits whose leases last `lease_ms`.
    redipc::semaphore semaphore(bytes_view name, uint64_t permits, uint64_t lease_ms) const {
        ipc_semaphore *out = nullptr;
        detail::check(ipc_semaphore_new(p(), name.data(), name.size(), permits, lease_ms, &out));
        return redipc::semaphore(out);
    }
#endif
#if defined(IPC_FEATURE_REGISTRY)
    /// The services with a live RPC server, sorted.
    std::vector<std::string> services() const {
        ipc_service_names *raw = nullptr;
        detail::check(ipc_services(p(), &raw));
        detail::owner<ipc_service_names, ipc_service_names_free> names(raw);
        std::vector<std::string> out;
        for (size_t i = 0, n = ipc_service_names_len(raw); i < n; i++) {
            const char *s = nullptr;
            size_t len = 0;
            detail::check(ipc_service_names_get(raw, i, &s, &len));
            out.emplace_back(s, len);
        }
        return out;
    }
#endif
#if defined(IPC_FEATURE_REGISTRY)
    /// The live servers of `service`, with what they announced.
    std::vector<instance> instances(bytes_view service) const {
        ipc_instances *raw = nullptr;
        detail::check(ipc_service_instances(p(), service.data(), service.size(), &raw));
        detail::owner<ipc_instances, ipc_instances_free> list(raw);
        std::vector<instance> out;
        for (size_t i = 0, n = ipc_instances_len(raw); i < n; i++) {
            const ipc_instance *in = ipc_instances_get(raw, i);
            if (!in) throw error(IPC_ERR_INVALID_ARGUMENT, ipc_last_error_message());
            instance x;
            x.service.assign(in->service, in->service_len);
            x.id = in->id;
            x.version = in->version;
            x.host = in->host;
            x.pid = in->pid;
            x.started_ms = in->started_ms;
            x.expires_in_ms = in->expires_in_ms;
            for (size_t j = 0; j < in->metadata_count; j++) {
                const ipc_field &f = in->metadata[j];
                x.metadata.emplace_back(std::string(f.name, f.name_len), std::string(f.value, f.value_len));
            }
            out.push_back(std::move(x));
        }
        return out;
    }
#endif
#if defined(IPC_FEATURE_QUEUES)
    uint64_t queue_requeue_dead(bytes_view queue) const {
        uint64_t n = 0;
        detail::check(ipc_queue_requeue_dead(p(), queue.data(), queue.size(), &n));
        return n;
    }
#endif

#if defined(IPC_FEATURE_RPC)
    // -- RPC

    /// Call a service and wait for its reply (IPC_ERR_REMOTE, IPC_ERR_TIMEOUT,
    /// IPC_ERR_NO_SERVER); with `fail_fast`, IPC_ERR_NO_SERVER at once when no server is
    /// registered.
    std::string call(bytes_view service, bytes_view payload, bytes_view method = "", uint64_t timeout_ms = 5000,
                     bool fail_fast = false) const {
        return call(service, payload, method, call_options().timeout_ms(timeout_ms).fail_fast(fail_fast));
    }
    /// As above, with call options (on the redis-ipc wire: `call_options().protocol(
    /// IPC_PROTOCOL_REDIS_IPC)`, the payload and the reply are JSON text).
    std::string call(bytes_view service, bytes_view payload, bytes_view method, const call_options &opts) const {
        detail::buffer b;
        detail::check(ipc_call(p(), service.data(), service.size(), method.data(), method.size(), payload.data(),
                               payload.size(), opts.get(), &b.data, &b.size));
        return b.str();
    }
    /// Answer calls to `service`: `handler` returns the reply, or throws (the caller gets
    /// IPC_ERR_REMOTE with its `what()`).
    redipc::server serve(bytes_view service, rpc_handler handler, size_t concurrency = 1) const {
        worker_options opts;
        opts.concurrency(concurrency);
        return serve(service, std::move(handler), opts);
    }
    /// As above, with worker options (concurrency, block timeout, report callback).
    redipc::server serve(bytes_view service, rpc_handler handler, const worker_options &opts) const {
        ipc_server *out = nullptr;
        detail::start_with_box(std::move(handler), [&](void *ud, ipc_userdata_free_cb free_ud) {
            return ipc_serve(p(), service.data(), service.size(), opts.get(), &detail::rpc_trampoline, ud, free_ud,
                             &out);
        });
        return redipc::server(out);
    }
    /// Answer calls by method: each (name, handler) of `methods`; an unknown method is
    /// answered with an error by the library (`unknown method: <m>` on the redis-ipc wire).
    redipc::server serve_methods(bytes_view service, method_map methods,
                                 const worker_options &opts = worker_options()) const {
        auto t = std::make_unique<detail::method_table>(detail::method_table{std::move(methods)});
        std::vector<ipc_rpc_method> table;  // copied by the library
        for (const auto &m : t->methods) {
            if (!m.second) throw error(IPC_ERR_NULL_ARG, "an empty std::function was given as a method handler");
            table.push_back(ipc_rpc_method{m.first.data(), m.first.size(), &detail::method_trampoline});
        }
        ipc_server *out = nullptr;
        detail::check(ipc_serve_methods(p(), service.data(), service.size(), table.data(), table.size(), opts.get(),
                                        t.get(), &detail::free_method_table, &out));
        t.release();  // owned by the library now; userdata_free deletes it
        return redipc::server(out);
    }
#endif

#if defined(IPC_FEATURE_STREAMS)
    // -- streams

    /// XADD: the new entry's id. `maxlen` -1: the client's default bound; 0: unbounded.
    std::string stream_publish(bytes_view stream, const field_list &fields, int64_t maxlen = -1) const {
        auto f = detail::fields(fields);
        char id[IPC_STREAM_ID_MAX];
        detail::check(ipc_stream_publish(p(), stream.data(), stream.size(), f.data(), f.size(), maxlen, id, sizeof id));
        return id;
    }
    entries stream_read(bytes_view stream, const std::string &from_id, size_t count, int64_t block_ms = 0) const {
        ipc_entries *out = nullptr;
        detail::check(ipc_stream_read(p(), stream.data(), stream.size(), from_id.c_str(), count, block_ms, &out));
        return entries(out);
    }
    entries stream_last(bytes_view stream) const {
        ipc_entries *out = nullptr;
        detail::check(ipc_stream_last(p(), stream.data(), stream.size(), &out));
        return entries(out);
    }
    uint64_t stream_len(bytes_view stream) const {
        uint64_t n = 0;
        detail::check(ipc_stream_len(p(), stream.data(), stream.size(), &n));
        return n;
    }
    bool stream_group_create(bytes_view stream, bytes_view group, const std::string &from_id = "$") const {
        bool created = false;
        detail::check(ipc_stream_group_create(p(), stream.data(), stream.size(), group.data(), group.size(),
                                              from_id.c_str(), &created));
        return created;
    }
    uint64_t stream_pending(bytes_view stream, bytes_view group) const {
        uint64_t n = 0;
        detail::check(ipc_stream_pending(p(), stream.data(), stream.size(), group.data(), group.size(), &n));
        return n;
    }
    entries stream_dead_letters(bytes_view stream, size_t count) const {
        ipc_entries *out = nullptr;
        detail::check(ipc_stream_dead_letters(p(), stream.data(), stream.size(), count, &out));
        return entries(out);
    }
    stream_follower stream_follow(bytes_view stream, const std::string &from_id = "$") const {
        ipc_stream_follower *out = nullptr;
        detail::check(ipc_stream_follow(p(), stream.data(), stream.size(), from_id.c_str(), &out));
        return stream_follower(out);
    }
    /// Consume a group: `handler` returning acknowledges the entry, throwing leaves it
    /// pending (claimed again, dead-lettered after `max_deliveries`).
    stream_consumer stream_consume(bytes_view stream, bytes_view group, bytes_view consumer, entry_handler handler,
                                   const consumer_options &opts = consumer_options()) const {
        ipc_stream_consumer *out = nullptr;
        detail::start_with_box(std::move(handler), [&](void *ud, ipc_userdata_free_cb free_ud) {
            return ipc_stream_consume(p(), stream.data(), stream.size(), group.data(), group.size(), consumer.data(),
                                      consumer.size(), opts.get(), &detail::entry_trampoline, ud, free_ud, &out);
        });
        return stream_consumer(out);
    }
#endif

#if defined(IPC_FEATURE_CACHE)
    // -- cache

    void cache_set(bytes_view key, bytes_view value, uint64_t ttl_ms = 0) const {
        detail::check(ipc_cache_set(p(), key.data(), key.size(), value.data(), value.size(), ttl_ms));
    }
    std::optional<std::string> cache_get(bytes_view key) const {
        return take([&](char **b, size_t *n, bool *f) { return ipc_cache_get(p(), key.data(), key.size(), b, n, f); });
    }
    /// Wait up to `timeout_ms` for the entry to exist; nullopt if it did not come.
    std::optional<std::string> cache_wait(bytes_view key, uint64_t timeout_ms) const {
        return take([&](char **b, size_t *n, bool *f) {
            return ipc_cache_wait(p(), key.data(), key.size(), timeout_ms, b, n, f);
        });
    }
    bool cache_delete(bytes_view key) const {
        bool existed = false;
        detail::check(ipc_cache_delete(p(), key.data(), key.size(), &existed));
        return existed;
    }
    bool cache_exists(bytes_view key) const {
        bool exists = false;
        detail::check(ipc_cache_exists(p(), key.data(), key.size(), &exists));
        return exists;
    }
#endif

#if defined(IPC_FEATURE_STATE)
    // -- hash state

    void hash_set(bytes_view hash, bytes_view field, bytes_view value) const {
        hash_set_impl(hash, field, value, nullptr);
    }
    /// As above, announced and stamped as `opts` says (a fleet's words).
    void hash_set(bytes_view hash, bytes_view field, bytes_view value, const hash_write_options &opts) const {
        hash_set_impl(hash, field, value, opts.get());
    }
    bool hash_set_if_changed(bytes_view hash, bytes_view field, bytes_view value) const {
        bool changed = false;
        detail::check(ipc_hash_set_if_changed(p(), hash.data(), hash.size(), field.data(), field.size(), value.data(),
                                              value.size(), &changed));
        return changed;
    }
    /// Each field announced; with `opts.announce(word)` the word once (`"*"`: re-read all).
    void hash_set_many(bytes_view hash, const field_list &fields) const {
        hash_set_many_impl(hash, fields, nullptr);
    }
    void hash_set_many(bytes_view hash, const field_list &fields, const hash_write_options &opts) const {
        hash_set_many_impl(hash, fields, opts.get());
    }
    /// Announces `*` (`opts.announce("replaced")`: the fleet's word).
    void hash_replace_all(bytes_view hash, const field_list &fields) const {
        hash_replace_all_impl(hash, fields, nullptr);
    }
    void hash_replace_all(bytes_view hash, const field_list &fields, const hash_write_options &opts) const {
        hash_replace_all_impl(hash, fields, opts.get());
    }
    bool hash_delete(bytes_view hash, bytes_view field) const { return hash_delete_impl(hash, field, nullptr); }
    bool hash_delete(bytes_view hash, bytes_view field, const hash_write_options &opts) const {
        return hash_delete_impl(hash, field, opts.get());
    }
    /// DEL the hash and announce `cleared` (the fleet's clear).
    void hash_clear(bytes_view hash) const { detail::check(ipc_hash_clear(p(), hash.data(), hash.size(), nullptr)); }
    void hash_clear(bytes_view hash, const hash_write_options &opts) const {
        detail::check(ipc_hash_clear(p(), hash.data(), hash.size(), opts.get()));
    }
    /// Call `cb(field, value)` for every field (first all, with initial sync), then for
    /// each change; `value` is nullopt for a deleted field.
    hash_watcher hash_watch(bytes_view hash, field_handler cb,
                            const hash_watch_options &opts = hash_watch_options()) const {
        return hash_watch(hash, std::move(cb), event_handler(), opts);
    }
    /// As above; `on_event(payload)` gets the payloads on the channel that are not fields
    /// (a fleet's `seatbox:opened`, `fault`); an empty `on_event` ignores them.
    hash_watcher hash_watch(bytes_view hash, field_handler cb, event_handler on_event,
                            const hash_watch_options &opts = hash_watch_options()) const {
        if (!cb) throw error(IPC_ERR_NULL_ARG, "an empty std::function was given as a callback");
        bool events = static_cast<bool>(on_event);
        auto h = std::make_unique<detail::hash_handlers>(detail::hash_handlers{std::move(cb), std::move(on_event)});
        ipc_hash_watcher *out = nullptr;
        detail::check(ipc_hash_watch(p(), hash.data(), hash.size(), opts.get(), &detail::field_trampoline,
                                     events ? &detail::hash_event_trampoline : nullptr, h.get(),
                                     &detail::free_hash_handlers, &out));
        h.release();  // owned by the library now; userdata_free deletes it
        return hash_watcher(out);
    }

    // -- faults (the fleet's layout: <group>:fault, events:faults, PUBLISH <group> fault)

    /// Raise fault `code` of `group`; true when it is new.
    bool fault_set(bytes_view group, int64_t code, bytes_view description) const {
        bool is_new = false;
        detail::check(ipc_fault_set(p(), group.data(), group.size(), code, description.data(), description.size(),
                                    &is_new));
        return is_new;
    }
    /// Clear fault `code` of `group`; true when it was set.
    bool fault_clear(bytes_view group, int64_t code) const {
        bool was_set = false;
        detail::check(ipc_fault_clear(p(), group.data(), group.size(), code, &was_set));
        return was_set;
    }
#endif

    // -- locks and keyspace events

#if defined(IPC_FEATURE_COORDINATION)
    /// Acquire a lock (IPC_ERR_TIMEOUT if still taken after `wait_ms`).
    redipc::lock lock(bytes_view name, uint64_t ttl_ms, uint64_t wait_ms = 0, bool auto_renew = false) const {
        detail::owner<ipc_lock_options, ipc_lock_options_free> o;
        {
            ipc_lock_options *raw = nullptr;
            detail::check(ipc_lock_options_new(&raw));
            o = detail::owner<ipc_lock_options, ipc_lock_options_free>(raw);
        }
        detail::check(ipc_lock_options_set_ttl_ms(o.get(), ttl_ms));
        detail::check(ipc_lock_options_set_wait_ms(o.get(), wait_ms));
        detail::check(ipc_lock_options_set_auto_renew(o.get(), auto_renew));
        ipc_lock *out = nullptr;
        detail::check(ipc_lock_acquire(p(), name.data(), name.size(), o.get(), &out));
        return redipc::lock(out);
    }
#endif
    /// Call `cb(key, event)` for keyspace events of keys matching `pattern` (`events`
    /// empty: every event).
    key_watch watch_keys(bytes_view pattern, key_event_handler cb, const std::vector<std::string> &events = {},
                         bool configure_server = false) const {
        std::vector<const char *> ev;
        for (const auto &e : events) ev.push_back(e.c_str());
        ipc_key_watch *out = nullptr;
        detail::start_with_box(std::move(cb), [&](void *ud, ipc_userdata_free_cb free_ud) {
            return ipc_watch_keys(p(), pattern.data(), pattern.size(), ev.empty() ? nullptr : ev.data(), ev.size(),
                                  configure_server, &detail::key_event_trampoline, ud, free_ud, &out);
        });
        return key_watch(out);
    }

private:
#if defined(IPC_FEATURE_STATE)
    void hash_set_impl(bytes_view hash, bytes_view field, bytes_view value, const ipc_hash_write_options *o) const {
        detail::check(
            ipc_hash_set(p(), hash.data(), hash.size(), field.data(), field.size(), value.data(), value.size(), o));
    }
    void hash_set_many_impl(bytes_view hash, const field_list &fields, const ipc_hash_write_options *o) const {
        auto f = detail::fields(fields);
        detail::check(ipc_hash_set_many(p(), hash.data(), hash.size(), f.data(), f.size(), o));
    }
    void hash_replace_all_impl(bytes_view hash, const field_list &fields, const ipc_hash_write_options *o) const {
        auto f = detail::fields(fields);
        detail::check(ipc_hash_replace_all(p(), hash.data(), hash.size(), f.empty() ? nullptr : f.data(), f.size(), o));
    }
    bool hash_delete_impl(bytes_view hash, bytes_view field, const ipc_hash_write_options *o) const {
        bool existed = false;
        detail::check(ipc_hash_delete(p(), hash.data(), hash.size(), field.data(), field.size(), o, &existed));
        return existed;
    }
#endif
    void connect(const std::string &url, const ipc_options *opts) {
        ipc_client *out = nullptr;
        detail::check(ipc_client_new(url.c_str(), opts, &out));
        h_ = owner_t(out);
    }
    ipc_client *p() const {
        if (!h_.get()) detail::throw_empty("client");
        return h_.get();
    }
    template <class It>
    reply command_args(It first, It last) const {
        detail::argv v(first, last);
        ipc_reply *out = nullptr;
        detail::check(ipc_command(p(), v.ptrs.data(), v.lens.data(), v.ptrs.size(), &out));
        return reply(out);
    }
    template <class F>
    static std::optional<std::string> take(F f) {
        detail::buffer b;
        bool found = false;
        detail::check(f(&b.data, &b.size, &found));
        if (!found) return std::nullopt;
        return b.str();
    }

    using owner_t = detail::owner<ipc_client, ipc_client_free>;
    owner_t h_;
};

}  // namespace redipc

#endif  // REDIPC_HPP
