// Must NOT compile with the core's include path (test/guard in CMakeLists):
// a host header included after the core's own headers, which the old
// cpp_only.hpp check could not see.
#include "core/cpp_only.hpp"
#include "core/value.hpp"
#include HOST_HEADER
int main() { return 0; }
