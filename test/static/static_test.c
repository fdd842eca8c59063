/* A program that embeds SQLite and links envdb statically
 * (build/libenvdb_sqlite.a): it registers envdb once, then every connection
 * it opens has the envdb_* functions. It provisions an organization, resolves
 * its default environment and opens the environment's database file.
 * Prints "ok" and exits 0, or names what failed and exits 1. */
#define _DEFAULT_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envdb_sqlite.h"

#ifndef ENVDB_EXPECTED_VERSION
#error "build with -DENVDB_EXPECTED_VERSION=\"x.y.z\""
#endif

static int failures = 0;

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "FAIL: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    ++failures;
  }
}

/* The first column of the first row of sql with one optional text parameter,
 * as a malloc'd string (NULL on a NULL result or an error, reported). */
static char *scalar(sqlite3 *db, const char *sql, const char *param) {
  sqlite3_stmt *stmt = NULL;
  char *out = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    check(0, sql, sqlite3_errmsg(db));
    return NULL;
  }
  if (param) sqlite3_bind_text(stmt, 1, param, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
    out = strdup((const char *)sqlite3_column_text(stmt, 0));
  else if (rc != SQLITE_ROW)
    check(0, sql, sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  return out;
}

static int same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

int main(void) {
  char dir[] = "/tmp/envdb-static-XXXXXX";
  char path[512], envs[512], cmd[600];
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  snprintf(path, sizeof path, "%s/control.db", dir);
  snprintf(envs, sizeof envs, "%s/envs", dir);

  /* Before registration a connection has no envdb. */
  sqlite3 *plain = NULL;
  sqlite3_open(":memory:", &plain);
  sqlite3_stmt *probe = NULL;
  check(sqlite3_prepare_v2(plain, "select envdb_version()", -1, &probe, NULL) != SQLITE_OK,
        "envdb_version() exists before envdb_sqlite_register()", NULL);
  sqlite3_finalize(probe);
  sqlite3_close(plain);

  check(envdb_sqlite_register() == SQLITE_OK, "envdb_sqlite_register()", NULL);

  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) return fprintf(stderr, "FAIL: open %s\n", path), 1;
  char *v = scalar(db, "select envdb_version()", NULL);
  check(same(v, ENVDB_EXPECTED_VERSION), "envdb_version() is " ENVDB_EXPECTED_VERSION, v);
  char *ready = scalar(db, "select envdb_init()", NULL);
  check(ready && strstr(ready, "catalog ready"), "envdb_init()", ready);
  char *host = scalar(db, "select json_extract(envdb_build_info(), '$.host')", NULL);
  check(same(host, "sqlite"), "envdb_build_info() host", host);
  free(scalar(db, "select envdb_keyring_add('k1', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=')",
              NULL));
  free(scalar(db, "select envdb_config('sqlite_data_dir', ?)", envs));

  char *env_id = scalar(db,
                        "select json_extract(envdb_provision_organization('acme', 'Acme'), "
                        "'$.defaultEnvironment.environment.id')",
                        NULL);
  check(env_id != NULL, "provision_organization returns the default environment", NULL);
  char *driver =
      scalar(db, "select json_extract(envdb_resolve_environment(?, 'admin'), '$.driver')", env_id);
  check(same(driver, "sqlite"), "resolve_environment driver", driver);
  char *token_len = scalar(
      db,
      "select length(json_extract(envdb_resolve_environment(?, 'admin'), '$.credential.token'))",
      env_id);
  check(same(token_len, "43"), "resolve_environment hands out a 43-character token", token_len);
  char *url =
      scalar(db, "select json_extract(envdb_resolve_environment(?), '$.databaseUrl')", env_id);
  check(url && strncmp(url, "file:", 5) == 0, "databaseUrl is a file: URL", url);

  /* A second connection, to the environment's own file: registered too. */
  if (url && strncmp(url, "file:", 5) == 0) {
    sqlite3 *env = NULL;
    check(sqlite3_open(url + 5, &env) == SQLITE_OK, "open the environment database", url);
    char *stamp = scalar(env, "select environment_id from sys_environment_info", NULL);
    check(same(stamp, env_id), "the environment database is stamped with its id", stamp);
    char *schema = scalar(env, "select envdb_environment_schema_version()", NULL);
    check(schema != NULL, "envdb_environment_schema_version() on the second connection", NULL);
    free(stamp);
    free(schema);
    int closed = sqlite3_close(env);
    check(closed == SQLITE_OK, "sqlite3_close() of the environment connection",
          closed ? sqlite3_errmsg(env) : NULL);
  }
  /* Statements stay prepared between calls, and are finalized when the
   * connection closes: sqlite3_close() (not _v2) refuses while any is left. */
  char *kept = scalar(db, "select count(*) > 0 from envdb_statements", NULL);
  check(same(kept, "1"), "envdb_statements lists the statements kept between calls", kept);
  free(v);
  free(ready);
  free(host);
  free(env_id);
  free(driver);
  free(token_len);
  free(url);
  free(kept);
  int closed = sqlite3_close(db);
  check(closed == SQLITE_OK, "sqlite3_close() after envdb calls",
        closed ? sqlite3_errmsg(db) : NULL);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
  if (failures) return 1;
  puts("ok");
  return 0;
}
