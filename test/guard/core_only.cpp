// Must compile with the core's include path: the control for the guard tests
// (they fail for the right reason, not because the command is broken).
#include "core/cpp_only.hpp"
#include "core/value.hpp"
int main() { return 0; }
