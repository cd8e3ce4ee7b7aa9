// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// quickstart: open /dev/dmaplane and print what the module reports.
//
//   $ quickstart [/dev/dmaplane]
//
// Exits non-zero with a message when the device cannot be opened, lacks
// a feature it needs, or speaks another ABI version.

#include <dmaplane/dmaplane.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : dmaplane::default_device_path;

    auto dev = dmaplane::device::open(path);
    if (!dev) {
        std::fprintf(stderr, "quickstart: cannot open %s: %s\n", path,
                     dev.error().message().c_str());
        if (dev.error() == std::errc::no_such_file_or_directory)
            std::fprintf(stderr, "quickstart: is the module loaded? (insmod dmaplane.ko)\n");
        return 1;
    }
    // GET_INFO, and the feature bits of what this program uses: a module
    // older than the library is reported here, naming what it lacks.
    auto info = dev->require_features(DMAPLANE_FEAT_CONTEXT);
    if (!info) {
        std::fprintf(stderr, "quickstart: %s: %s\n", path, info.error().message().c_str());
        return 1;
    }
    if (info->abi_version != DMAPLANE_ABI_VERSION) {
        std::fprintf(stderr, "quickstart: module speaks ABI %u, this program ABI %u\n",
                     info->abi_version, DMAPLANE_ABI_VERSION);
        return 1;
    }
    std::printf("dmaplane device %s (library %s)\n%s", path, dmaplane::version_string,
                dmaplane::to_string(*info).c_str());
    return 0;
}
