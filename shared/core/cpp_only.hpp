// Included first by every core header. When a core translation unit is
// compiled (ENVDB_CORE_BUILD, set by CMake on the envdb_core target), a
// Postgres or SQLite header that leaked in before this point stops the build:
// the core must stay host-neutral. Host files include both, legitimately.
// The build's main guard is cmake/host_headers/ (first on the core's include
// path), which also stops a host header included after this one.
#pragma once
#ifdef ENVDB_CORE_BUILD
#if defined(PG_VERSION_NUM) || defined(POSTGRES_H) || defined(FMGR_H)
#error "shared/ is the host-neutral core: do not include postgres.h or fmgr.h here"
#endif
#if defined(SQLITE3_H) || defined(SQLITE3EXT_H) || defined(SQLITE_EXTENSION_INIT1)
#error "shared/ is the host-neutral core: do not include sqlite3.h or sqlite3ext.h here"
#endif
#endif
