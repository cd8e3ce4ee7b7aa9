// A user of the library, built with dmaplane as a Meson subproject.
#include <dmaplane/dmaplane.hpp>

int main() {
    auto dev = dmaplane::device::open("/nonexistent/dmaplane");
    return dev.has_value() ? 1 : 0;
}
