// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Links one translation unit per public header (each includes its header
// first and alone, so a header missing an include fails to compile) and runs
// their trivial uses. Linking them together also proves the headers' inline
// definitions agree across translation units. Exits non-zero on a failure.
#include <cstdio>

int header_result();
int header_fd();
int header_version();
int header_device();
int header_buffer();
int header_mapping();
int header_topology();
int header_rdma();
int header_memory_region();
int header_domain();
int header_endpoint();
int header_listener();
int header_ring();
int header_prep();
int header_task();
int header_channel();
int header_histogram();
int header_sync_wait();
int header_tensor();
int header_kv_cache();
int header_kv_transfer();
int header_inet_address();
int header_dmaplane();
int header_detail_sys();
int header_detail_object();
int header_detail_format();
int header_uapi();

int main() {
    struct entry {
        const char* name;
        int (*fn)();
    };
    const entry entries[] = {
        {"result.hpp", header_result},
        {"fd.hpp", header_fd},
        {"version.hpp", header_version},
        {"device.hpp", header_device},
        {"buffer.hpp", header_buffer},
        {"mapping.hpp", header_mapping},
        {"topology.hpp", header_topology},
        {"rdma.hpp", header_rdma},
        {"memory_region.hpp", header_memory_region},
        {"domain.hpp", header_domain},
        {"endpoint.hpp", header_endpoint},
        {"listener.hpp", header_listener},
        {"ring.hpp", header_ring},
        {"prep.hpp", header_prep},
        {"task.hpp", header_task},
        {"channel.hpp", header_channel},
        {"histogram.hpp", header_histogram},
        {"sync_wait.hpp", header_sync_wait},
        {"tensor.hpp", header_tensor},
        {"kv_cache.hpp", header_kv_cache},
        {"kv_transfer.hpp", header_kv_transfer},
        {"inet_address.hpp", header_inet_address},
        {"dmaplane.hpp", header_dmaplane},
        {"detail/sys.hpp", header_detail_sys},
        {"detail/object.hpp", header_detail_object},
        {"detail/format.hpp", header_detail_format},
        {"uapi/dmaplane.h", header_uapi},
    };
    int failures = 0;
    for (const entry& e : entries) {
        if (e.fn() != 0) {
            std::fprintf(stderr, "FAILED: %s\n", e.name);
            ++failures;
        }
    }
    return failures == 0 ? 0 : 1;
}
