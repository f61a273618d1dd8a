// hello.cpp: the C++ wrapper in a few lines: connect, set/get/incr, subscribe with a lambda,
// a transaction. Errors are exceptions (redipc::error).
//
//     ./hello redis://127.0.0.1:6379/0      (or unix:///path/to/redis.sock)
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "redipc.hpp"

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: hello URL\n";
        return 2;
    }
    try {
        redipc::client c(argv[1], redipc::options().connect_timeout_ms(2000));
        std::cout << "redipc " << redipc::version() << "\n";

        c.set("hello:cpp", "from C++");
        std::cout << "GET hello:cpp -> " << c.get("hello:cpp").value_or("(nil)") << "\n";
        std::cout << "INCR hello:n -> " << c.incr("hello:n") << "\n";

        std::atomic<int> received{0};
        {
            auto sub = c.subscribe("hello:news", [&](const redipc::message &m) {
                if (m.is_message()) {
                    std::cout << "message on " << m.channel() << ": " << m.payload() << "\n";
                    ++received;
                }
            });
            c.publish("hello:news", "hi from C++");
            for (int i = 0; i < 200 && received == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }  // the subscription ends here: no callback after this line

        auto tx = c.tx();
        tx.add("SET", "hello:a", 1).add("INCRBY", "hello:a", 41).add("GET", "hello:a");
        redipc::reply r = tx.exec();
        std::cout << "MULTI/EXEC -> " << r[0].str() << ", " << r[1].integer() << ", " << r[2].str() << "\n";

        c.del("hello:cpp");
        c.del("hello:n");
        c.del("hello:a");
        return received == 1 && r[1].integer() == 42 ? 0 : 1;
    } catch (const redipc::error &e) {
        std::cerr << "redipc error " << e.name() << " (" << e.result() << "): " << e.message() << "\n";
        return 1;
    }
}
