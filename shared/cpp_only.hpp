// Included first by every core header. The core must stay host-neutral: if a
// Postgres or SQLite header was included before this point, stop the build.
#pragma once
#if defined(PG_VERSION_NUM) || defined(POSTGRES_H) || defined(FMGR_H)
#error "shared/ is the host-neutral core: do not include postgres.h or fmgr.h here"
#endif
#if defined(SQLITE3_H) || defined(SQLITE3EXT_H) || defined(SQLITE_EXTENSION_INIT1)
#error "shared/ is the host-neutral core: do not include sqlite3.h or sqlite3ext.h here"
#endif
