/* envdb for programs that embed SQLite: link build/libenvdb_sqlite.a (built
 * with SQLITE_CORE, the envdb core inside) and call envdb_sqlite_register()
 * once before opening connections:
 *
 *   cc app.c libenvdb_sqlite.a -lsqlite3 -lcrypto -lstdc++ -lm
 *
 * Every connection opened afterwards has the envdb_* functions, exactly as if
 * it had loaded the extension (ENVDB_KEYRING is read the same way). */
#ifndef ENVDB_SQLITE_H
#define ENVDB_SQLITE_H

#ifdef __cplusplus
extern "C" {
#endif

struct sqlite3;
struct sqlite3_api_routines;

/* Registers envdb as an automatic extension (sqlite3_auto_extension) of this
 * process. Returns SQLITE_OK (0) or SQLite's error code. */
int envdb_sqlite_register(void);

/* Registers envdb's functions on one connection; what envdb_sqlite_register
 * has SQLite call for each new connection. api is unused (may be NULL). */
int sqlite3_envdb_init(struct sqlite3 *db, char **error_message,
                       const struct sqlite3_api_routines *api);

#ifdef __cplusplus
}
#endif

#endif /* ENVDB_SQLITE_H */
