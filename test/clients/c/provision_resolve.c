/*
 * envdb from C with libpq: provision an environment on the turso driver, act
 * as the provisioning worker (claim the job, complete it with the token the
 * database service minted), then resolve the environment the way a request
 * router does and check the answer.
 *
 *   cc -o provision_resolve provision_resolve.c -I$(pg_config --includedir) -lpq
 *   ./provision_resolve            (connection from PGHOST, PGPORT, PGDATABASE, ...)
 *
 * Every value, ids and the token alike, travels as a bind parameter
 * (PQexecParams), so no token is ever part of a statement's text. JSON answers
 * are taken apart by Postgres' own jsonb operators.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGconn *conn;

static void fail(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  fputs("c-libpq: ", stderr);
  vfprintf(stderr, format, ap);
  fputc('\n', stderr);
  va_end(ap);
  PQfinish(conn);
  exit(1);
}

/* Runs sql with nparams text parameters; expects exactly one row. */
static PGresult *one_row(const char *sql, int nparams, const char *const *params) {
  PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) fail("%s\n  in: %s", PQerrorMessage(conn), sql);
  if (PQntuples(res) != 1) fail("expected one row, got %d\n  in: %s", PQntuples(res), sql);
  return res;
}

static void command(const char *sql) {
  PGresult *res = PQexec(conn, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail("%s\n  in: %s", PQerrorMessage(conn), sql);
  PQclear(res);
}

/* A copy of column `col` of the single row (empty string for NULL). */
static char *field(PGresult *res, int col) {
  char *copy = strdup(PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
  if (copy == NULL) fail("out of memory");
  return copy;
}

/* 32 random bytes as hex: stands in for the token Turso would mint. */
static void mint_token(char out[65]) {
  unsigned char bytes[32];
  FILE *f = fopen("/dev/urandom", "rb");
  if (f == NULL || fread(bytes, 1, sizeof bytes, f) != sizeof bytes)
    fail("cannot read /dev/urandom");
  fclose(f);
  for (size_t i = 0; i < sizeof bytes; i++) snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

int main(void) {
  conn = PQconnectdb("");
  if (PQstatus(conn) != CONNECTION_OK) fail("%s", PQerrorMessage(conn));

  /* 1. An organization and a development environment, on the turso driver. */
  const char *org_request[] = {"{\"slug\": \"acme\", \"name\": \"Acme\", \"driver\": \"turso\"}"};
  PGresult *res =
      one_row("SELECT r->'organization'->>'id' FROM envdb.provision_organization($1::jsonb) r", 1,
              org_request);
  char *org_id = field(res, 0);
  PQclear(res);

  const char *env_params[] = {org_id, "dev", "development", "turso"};
  res = one_row(
      "SELECT r->'environment'->>'id', r->'environment'->>'status', r->'database'->>'databaseName',"
      "       r->'job'->>'id'"
      "  FROM envdb.provision_environment(jsonb_build_object("
      "         'organizationId', $1::text, 'slug', $2::text, 'envType', $3::text, 'driver', "
      "$4::text)) r",
      4, env_params);
  char *env_id = field(res, 0), *status = field(res, 1), *db_name = field(res, 2),
       *job_id = field(res, 3);
  PQclear(res);
  if (strcmp(status, "provisioning") != 0)
    fail("new turso environment is %s, not provisioning", status);
  if (*job_id == '\0') fail("no provisioning job queued");

  /* 2. The worker: claim the queued jobs, complete this environment's one. */
  const char *claim_params[] = {"turso", "c-libpq-worker", job_id};
  res = one_row(
      "SELECT count(*) FILTER (WHERE j->>'id' = $3), count(*)"
      "  FROM jsonb_array_elements(envdb.claim_provisioning_jobs($1, 10, $2)) j",
      3, claim_params);
  if (strcmp(PQgetvalue(res, 0, 0), "1") != 0) fail("job %s was not claimed", job_id);
  PQclear(res);

  char token[65], url[256];
  mint_token(token);
  snprintf(url, sizeof url, "libsql://%s.turso.example", db_name);
  const char *complete_params[] = {job_id, url, token};
  res = one_row(
      "SELECT r->'environment'->>'status'"
      "  FROM envdb.complete_provisioning_job($1, $2, jsonb_build_object('readwrite', $3::text)) r",
      3, complete_params);
  if (strcmp(PQgetvalue(res, 0, 0), "active") != 0)
    fail("completed environment is %s", PQgetvalue(res, 0, 0));
  PQclear(res);

  /* 3. The router: resolve the environment to its database and credential. */
  const char *resolve_params[] = {env_id, "readwrite"};
  res = one_row(
      "SELECT r->>'status', r->>'databaseName', r->>'databaseUrl', r->'credential'->>'scope',"
      "       r->'credential'->>'token'"
      "  FROM envdb.resolve_environment($1, $2) r",
      2, resolve_params);
  if (strcmp(PQgetvalue(res, 0, 0), "active") != 0)
    fail("resolved status %s", PQgetvalue(res, 0, 0));
  if (strcmp(PQgetvalue(res, 0, 1), db_name) != 0)
    fail("resolved databaseName %s", PQgetvalue(res, 0, 1));
  if (strncmp(db_name, "env-", 4) != 0 || strlen(db_name) != 30) fail("databaseName %s", db_name);
  if (strcmp(PQgetvalue(res, 0, 2), url) != 0)
    fail("resolved databaseUrl %s", PQgetvalue(res, 0, 2));
  if (strcmp(PQgetvalue(res, 0, 3), "readwrite") != 0)
    fail("credential scope %s", PQgetvalue(res, 0, 3));
  if (strcmp(PQgetvalue(res, 0, 4), token) != 0) fail("resolved token differs from the minted one");
  PQclear(res);

  /* 4. Use it: bind the environment to a transaction as the request context. */
  command("BEGIN");
  const char *context_params[] = {env_id};
  res = one_row("SELECT envdb.set_active_environment($1)->>'databaseName'", 1, context_params);
  if (strcmp(PQgetvalue(res, 0, 0), db_name) != 0)
    fail("context databaseName %s", PQgetvalue(res, 0, 0));
  PQclear(res);
  res = one_row("SELECT envdb.current_environment_id()", 0, NULL);
  if (strcmp(PQgetvalue(res, 0, 0), env_id) != 0)
    fail("current_environment_id is %s", PQgetvalue(res, 0, 0));
  PQclear(res);
  command("COMMIT");
  res = one_row("SELECT envdb.current_environment_id() IS NULL", 0, NULL);
  if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) fail("context outlived its transaction");
  PQclear(res);

  printf("c-libpq: %s active, %s, token resolved\n", env_id, db_name);
  free(org_id), free(env_id), free(status), free(db_name), free(job_id);
  PQfinish(conn);
  return 0;
}
