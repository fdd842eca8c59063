#include "tenancy/resolve.hpp"

#include <climits>
#include <memory>
#include <optional>
#include <string>

#include "catalog/row_rules.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "secrets/vault.hpp"
#include "tenancy/isolation.hpp"
#include "tenancy/policies.hpp"
#include "tenancy/resolve_answer.hpp"
#include "tenancy/usage.hpp"

namespace envdb::resolve {

namespace {

using T = api::Type;

// $1 environment id, $2 scope. The credential is LEFT JOINed so that one probe
// also tells "no such environment" from "no active credential of that scope".
// Expiry and staleness are judged on the returned timestamps, so the
// statement stays as small as the hand-written lookup.
const std::string kResolveSql =
    "SELECT e.organization_id, e.env_type, e.status, d.id AS database_id, d.driver, "
    "d.database_name, d.database_url, d.region, d.last_accessed_at, c.id AS credential_id, "
    "c.scope, c.kms_key_id, c.token_cipher, c.username, c.expires_at, "
    "e.expires_at AS trial_expires_at, d.storage_limit_mb "
    "FROM envdb.sys_environment e "
    "JOIN envdb.sys_environment_database d ON d.environment_id = e.id "
    "LEFT JOIN envdb.sys_database_credential c "
    "ON c.database_id = d.id AND c.scope = $2 AND c.status = 'active' "
    "WHERE e.id = $1";

// The columns of kResolveSql, in order.
enum Column : int {
  kOrganizationId,
  kEnvType,
  kStatus,
  kDatabaseId,
  kDriver,
  kDatabaseName,
  kDatabaseUrl,
  kRegion,
  kLastAccessedAt,
  kCredentialId,
  kScope,
  kKmsKeyId,
  kTokenCipher,
  kUsername,
  kExpiresAt,
  kTrialExpiresAt,
  kStorageLimitMb,
  kColumns
};

// What a kept row adds to the query's columns once it has answered a resolve
// (NULL until then): the associated data its token opened under, and the
// answer's text around the token (resolve_answer.hpp). All three follow from
// the row, the environment id and the scope alone, so they are valid exactly
// as long as the row; the row also passed row_rules::require_database then.
enum Derived : int { kAad = kColumns, kAnswerHead, kAnswerTail, kRowSize };

// $1 database id, $2 now - kTouchSeconds, $3 now. The condition repeats the
// staleness test, so concurrent resolves touch the row at most once.
const std::string kTouchSql =
    "UPDATE envdb.sys_environment_database SET last_accessed_at = $3::timestamptz "
    "WHERE id = $1 AND (last_accessed_at IS NULL OR last_accessed_at < $2::timestamptz)";
// Postgres: a row locked by a credential change (FOR NO KEY UPDATE) is skipped
// rather than waited for; the next resolve touches it.
const std::string kTouchSqlPostgres =
    "UPDATE envdb.sys_environment_database d SET last_accessed_at = $3::timestamptz "
    "FROM (SELECT id FROM envdb.sys_environment_database WHERE id = $1 AND "
    "(last_accessed_at IS NULL OR last_accessed_at < $2::timestamptz) "
    "FOR NO KEY UPDATE SKIP LOCKED) s WHERE d.id = s.id";

// The row shape vault::open_token reads with the database's identity.
const std::shared_ptr<const std::vector<std::string>>& sealed_names() {
  static const auto names =
      std::make_shared<const std::vector<std::string>>(vault::sealed_row_names());
  return names;
}

// A timestamp column in milliseconds; nullopt for NULL or text that is not a
// timestamp (which the callers treat as expired and as stale: fail closed).
std::optional<int64_t> ms_of(const Value& v) {
  if (auto s = std::get_if<std::string>(&v)) return ms_from_iso(*s);
  return std::nullopt;
}

std::string text_of(const Value& v) {
  if (auto s = std::get_if<std::string>(&v)) return *s;
  return std::string();
}

// The token of a row that has not answered from the cache yet, through
// vault::open_secret (which also checks the database's name and URL), with the
// associated data it opened under in `aad`.
crypto::SecretBytes open_row(Host& host, const std::vector<Value>& row, std::string& aad) {
  std::vector<Value> sealed;
  sealed.reserve(8);
  sealed.push_back(row[kCredentialId]);
  sealed.push_back(row[kDatabaseId]);
  sealed.push_back(row[kScope]);
  sealed.push_back(row[kKmsKeyId]);
  sealed.push_back(row[kTokenCipher]);
  sealed.push_back(row[kDriver]);
  sealed.push_back(row[kDatabaseName]);
  sealed.push_back(row[kDatabaseUrl]);
  return vault::open_secret(host, Row(sealed_names(), std::move(sealed)), &aad);
}

void touch(Store& store, const Value& database_id, int64_t now) {
  const std::string cutoff = iso_from_ms(now - kTouchSeconds * 1000);
  const std::string now_text = iso_from_ms(now);
  if (store.dialect() == Dialect::postgres) {
    execute(store, kTouchSqlPostgres, {database_id, cutoff, now_text});
    return;
  }
  // Bookkeeping never fails a resolve: a SQLite database that is busy, or
  // opened read-only, keeps its old value. (Postgres cannot go on after a
  // failed statement; there the touch skips locked rows instead.)
  try {
    execute(store, kTouchSql, {database_id, cutoff, now_text});
  } catch (const Error&) {
  }
}

}  // namespace

void flush_touches(Host& host, RowCache& cache, int64_t now, bool force) {
  if (cache.pending_touches() == 0) return;
  if (!force && cache.pending_touches() < kMaxPendingTouches &&
      now - cache.first_touch_ms() < kTouchSeconds * 1000)
    return;
  Store& store = host.store();
  auto touches = cache.take_touches();
  if (!store.writable()) return;
  const std::optional<Generation> before = host.catalog_generation();
  // As touch(): bookkeeping never fails a resolve. A busy database keeps the
  // old values (the batch is dropped; the next minute touches again).
  try {
    // One write transaction for the whole batch: outside a transaction each
    // UPDATE would commit on its own (a journal write and sync per touch).
    // Inside a writing statement no savepoint can open, but the statement's
    // own transaction already holds the batch.
    std::optional<Atomic> batch;
    try {
      batch.emplace(store, "envdb_touches");
    } catch (const Error&) {
    }
    for (const auto& [database_id, at] : touches)
      execute(store, kTouchSql,
              {database_id, iso_from_ms(at - kTouchSeconds * 1000), iso_from_ms(at)});
    if (batch) batch->done();
  } catch (const Error&) {
    return;
  }
  // Those writes only moved last_accessed_at, which the kept rows already
  // hold: they stay valid under the generation the writes made.
  const std::optional<Generation> after = host.catalog_generation();
  if (before && after) cache.restamp(*before, *after);
}

Value resolve(api::Call& c, const std::string& environment_id, std::string scope) {
  if (!vault::is_scope(scope))
    fail(Code::invalid_parameter,
         "scope " + quote_value(scope) + " is not a credential scope (readwrite, readonly, admin)");
  // A user context hands out at most what the user's role allows. Checked
  // before the lookup; without a context this is one empty setting read.
  if (c.host.context())
    isolation::require_scope_allowed(isolation::context_of(c.host), environment_id, scope);

  // The row comes from the session's cache while the catalog generation
  // holds (core/row_cache.hpp), else from the one indexed query. The token
  // stays sealed in the cache and is opened below on every call, under the
  // keyring of the moment; the checks below also run on every call.
  RowCache* cache = c.host.resolve_cache();
  const std::optional<Generation> generation = cache ? c.host.catalog_generation() : std::nullopt;
  std::string key;
  const std::vector<Value>* cached = nullptr;
  if (generation) {
    key.reserve(environment_id.size() + scope.size() + 1);
    key.append(environment_id).push_back('\n');
    key.append(scope);
    cached = cache->find(*generation, key);
  }
  std::vector<Value> fetched;
  if (!cached) {
    fetched.resize(kRowSize);
    auto stmt = c.store.prepare(kResolveSql);
    stmt->bind(1, environment_id);
    stmt->bind(2, scope);
    if (!stmt->step())
      fail(Code::not_found,
           "environment_id " + quote_value(environment_id) + " names no environment");
    for (int i = 0; i < kColumns; ++i) fetched[i] = stmt->column(i);
  }  // the statement is reset before anything else runs
  if (!cached && generation) {
    cache->put(*generation, key, fetched);
  }
  const std::vector<Value>& row = cached ? *cached : fetched;
  // A kept row that answered before: checked then, and its answer's text kept.
  const auto* aad = std::get_if<Blob>(&row[kAad]);
  const auto* head = std::get_if<std::string>(&row[kAnswerHead]);
  const auto* tail = std::get_if<std::string>(&row[kAnswerTail]);
  if (!head || !tail) aad = nullptr;

  // Where a token would be sent is checked first; the token is also bound
  // to that name and URL (envelope format 2).
  if (!aad) {
    const std::optional<std::string> url =
        is_null(row[kDatabaseUrl]) ? std::nullopt
                                   : std::optional<std::string>(text_of(row[kDatabaseUrl]));
    row_rules::require_database(text_of(row[kDatabaseId]), text_of(row[kDriver]),
                                text_of(row[kDatabaseName]), url);
  }
  const std::string status = text_of(row[kStatus]);
  if (status != "active")
    fail(Code::conflict, "environment_id " + quote_value(environment_id) + " is " + status +
                             "; only an active environment is resolved");
  const int64_t now = now_ms();
  // A trial past its end is suspended by the next sweep (the Postgres
  // worker's pass; SQLite: now, policies::observe); it is not resolved
  // meanwhile.
  if (!is_null(row[kTrialExpiresAt]) && ms_of(row[kTrialExpiresAt]).value_or(INT64_MIN) <= now &&
      text_of(row[kEnvType]) == "trial") {
    policies::observe(c.host, environment_id);
    fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                             " is a trial that ended at " + text_of(row[kTrialExpiresAt]) +
                             "; it is suspended (extend_environment_trial)");
  }
  if (is_null(row[kCredentialId]))
    fail(Code::not_found, "environment_id " + quote_value(environment_id) + " has no active " +
                              scope + " credential");
  if (!is_null(row[kExpiresAt]) && ms_of(row[kExpiresAt]).value_or(INT64_MIN) <= now)
    fail(Code::not_found, "environment_id " + quote_value(environment_id) + " has no active " +
                              scope + " credential (credential " +
                              quote_value(text_of(row[kCredentialId])) + " expired at " +
                              text_of(row[kExpiresAt]) + ")");

  std::string opened_under;
  const crypto::SecretBytes token = aad ? vault::open_sealed(c.host, text_of(row[kCredentialId]),
                                                             text_of(row[kKmsKeyId]),
                                                             row[kTokenCipher], aad->bytes)
                                        : open_row(c.host, row, opened_under);
  // The answer is made before the touch below, which may write (and so must
  // not be able to move anything the pointers above point into).
  std::string text;
  if (aad) {
    text = resolve_answer::join(*head, token.view(), *tail);
  } else {
    // The sqlite driver's storage limit as the PRAGMA max_page_count the
    // router applies on the connection it opens (usage.hpp).
    std::optional<int64_t> limit_mb;
    if (auto v = std::get_if<int64_t>(&row[kStorageLimitMb])) limit_mb = *v;
    resolve_answer::Parts parts =
        resolve_answer::parts({environment_id, row[kOrganizationId], row[kEnvType], status,
                               row[kDriver], row[kDatabaseName], row[kDatabaseUrl], row[kRegion],
                               usage::max_page_count(text_of(row[kDriver]), limit_mb),
                               row[kCredentialId], scope, row[kUsername], row[kExpiresAt]});
    text = resolve_answer::join(parts.head, token.view(), parts.tail);
    if (cache && generation) {
      // The row answered: later resolves served from the cache skip the
      // checks of its contents, the associated data's hash and the answer's
      // text.
      cache->set_column(key, kAad, Blob{std::move(opened_under)});
      cache->set_column(key, kAnswerHead, std::move(parts.head));
      cache->set_column(key, kAnswerTail, std::move(parts.tail));
    }
  }
  const auto last_accessed = ms_of(row[kLastAccessedAt]);
  if (!last_accessed || *last_accessed < now - kTouchSeconds * 1000) {
    // A host that writes the access later takes it even where this call may
    // not write (Postgres: a READ ONLY transaction; its worker writes it).
    const bool deferred = c.host.defer_touch(text_of(row[kDatabaseId]), now);
    if (deferred || c.store.writable()) {
      if (!deferred) touch(c.store, row[kDatabaseId], now);
      // The kept row remembers the touch, so the next resolves do not repeat it.
      if (cache) cache->set_column(key, kLastAccessedAt, iso_from_ms(now));
    }
  }
  if (cache && cache->pending_touches() > 0) flush_touches(c.host, *cache, now, false);
  return text;
}

namespace {

Value resolve_environment(api::Call& c) {
  const std::string environment_id = c.text("environment_id", 128);
  require_id("environment_id", environment_id);
  return resolve(c, environment_id, c.opt_text("scope", 64).value_or("readwrite"));
}

}  // namespace

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"resolve_environment",
       {{"environment_id", T::text, nullptr}, {"scope", T::text, "'readwrite'"}},
       T::json,
       resolve_environment,
       0,
       kAdmin | kRouter,
       "the router's lookup: where an active environment's database lives and the decrypted "
       "active credential of the scope (readwrite, readonly, admin); conflict when the "
       "environment is not active, not_found when it has no usable credential of that scope; "
       "under a user context only that environment, and at most the scope the user's role "
       "allows (permission_denied)"},
  };
}

}  // namespace envdb::resolve
