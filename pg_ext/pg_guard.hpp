// Calls into Postgres from C++ go through pg::guarded: a Postgres ERROR raised
// inside (a longjmp) is caught here, the error stack and memory context are
// restored, and it continues as a C++ exception (envdb::HostError keeping the
// SQLSTATE). The callable must hold no C++ object with a destructor: its frame
// is abandoned by the longjmp. Keep each lambda to plain Postgres calls.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <csetjmp>

#include "core/errors.hpp"

namespace envdb::pg {

struct ErrorStackRestore {
  ErrorStackRestore() : exception_stack(PG_exception_stack), context_stack(error_context_stack) {}
  ~ErrorStackRestore() {
    PG_exception_stack = exception_stack;
    error_context_stack = context_stack;
  }
  sigjmp_buf* exception_stack;
  ErrorContextCallback* context_stack;
};

// Converts the caught error to an envdb::HostError and frees it.
[[noreturn]] void throw_error_data(ErrorData* edata);

template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  MemoryContext ctx = CurrentMemoryContext;
  {
    ErrorStackRestore restore;
    sigjmp_buf buf;
    if (sigsetjmp(buf, 0) == 0) {
      PG_exception_stack = &buf;
      return f();
    }
  }
  MemoryContextSwitchTo(ctx);
  ErrorData* edata = CopyErrorData();
  FlushErrorState();
  throw_error_data(edata);
}

}  // namespace envdb::pg
