#include "secrets/credentials.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "jobs/turso.hpp"
#include "postgres/provisioner.hpp"
#include "secrets/crypto.hpp"
#include "secrets/vault.hpp"

namespace envdb::credentials {

namespace {

using T = api::Type;

// A database with its environment, the target of issue and rotate.
struct Target {
  std::string database_id;
  std::string driver;
  std::string environment_id;
  std::string organization_id;
};

// Loads a database and its environment, refusing an archived environment.
// In Postgres the environment row is locked FOR NO KEY UPDATE (one
// environment has one database), so issue and rotate on one database run one
// after the other and the later one's next statements see what the earlier
// one committed. (Locking only the active credential row would not do under
// READ COMMITTED: the waiting transaction re-checks that row, finds it no
// longer active and misses the new one.) The same lock makes an archive
// (which revokes every credential) run wholly before or wholly after this
// call. The database row is not locked: the router's last_accessed_at touch
// holds that row until its transaction ends, and an admin write must never
// wait for a router that keeps its transaction open. Inserting a credential
// takes only FOR KEY SHARE on it, which the touch does not block.
Target load_target(Store& store, const std::string& database_id) {
  require_id("database_id", database_id);
  std::string sql =
      "SELECT d.id, d.driver, e.id AS environment_id, e.organization_id, e.status "
      "FROM envdb.sys_environment_database d JOIN envdb.sys_environment e "
      "ON e.id = d.environment_id WHERE d.id = $1";
  if (is_postgres(store)) sql += " FOR NO KEY UPDATE OF e";
  auto row = query_one(store, sql, {database_id});
  if (!row)
    fail(Code::not_found,
         "database_id " + quote_value(database_id) + " names no environment database");
  if (row->text("status") == "archived")
    fail(Code::conflict, "database_id " + quote_value(database_id) + " belongs to environment " +
                             quote_value(row->text("environment_id")) + ", which is archived");
  return {row->text("id"), row->text("driver"), row->text("environment_id"),
          row->text("organization_id")};
}

std::string scope_arg(api::Call& c) {
  std::string scope = c.opt_text("scope", 64).value_or("readwrite");
  if (!vault::is_scope(scope))
    fail(Code::invalid_parameter,
         "scope " + quote_value(scope) + " is not a credential scope (readwrite, readonly, admin)");
  return scope;
}

// The caller's token, or a generated one where envdb mints tokens. Never
// quoted in a message.
crypto::SecretBytes token_arg(api::Call& c, const Target& target, bool& generated) {
  auto token = c.opt_text("token", vault::kMaxTokenBytes);
  if (token) {
    if (token->empty()) fail(Code::invalid_parameter, "token must not be empty");
    generated = false;
    return crypto::SecretBytes(std::move(*token));
  }
  if (target.driver == "turso")
    fail(Code::invalid_parameter, "token is required for turso databases");
  generated = true;
  return crypto::SecretBytes(crypto::generate_token());
}

std::optional<Row> active_credential(Store& store, const std::string& database_id,
                                     const std::string& scope) {
  std::string sql = std::string("SELECT ") + records::kCredentialColumns +
                    " FROM envdb.sys_database_credential "
                    "WHERE database_id = $1 AND scope = $2 AND status = 'active'";
  if (is_postgres(store)) sql += " FOR UPDATE";
  return query_one(store, sql, {database_id, scope});
}

audit::Event event_for(const Target& t, const char* action, const std::string& credential_id) {
  audit::Event e;
  e.action = action;
  e.organization_id = t.organization_id;
  e.environment_id = t.environment_id;
  e.subject_type = "credential";
  e.subject_id = credential_id;
  return e;
}

// A credential with the identity of its environment, for revoke, expire and
// reveal.
std::string credential_with_owner_sql(const std::string& where) {
  return "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.status, c.expires_at, "
         "d.environment_id, e.organization_id FROM envdb.sys_database_credential c "
         "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
         "JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE " +
         where;
}

audit::Event event_for(const Row& r, const char* action) {
  audit::Event e;
  e.action = action;
  e.organization_id = r.text("organization_id");
  e.environment_id = r.text("environment_id");
  e.subject_type = "credential";
  e.subject_id = r.text("id");
  e.detail = Json{{"databaseId", r.text("database_id")}, {"scope", r.text("scope")}};
  return e;
}

// The audit trail of a reveal. Repeated reveals of one credential by one
// caller within a minute (UTC, from :00) are counted on that minute's first
// event (detail.count, detail.lastAt), so the append-only table grows with
// distinct events, not with calls. In Postgres an event another transaction
// is counting on is skipped (SKIP LOCKED), never waited for: a router that
// keeps its transaction open then costs one more event, not a stall.
void record_reveal(Host& host, const Row& row) {
  Store& store = host.store();
  const int64_t now = now_ms();
  const auto actor = host.actor();
  std::string sql =
      "SELECT id, detail FROM envdb.sys_audit_event WHERE environment_id = $1 AND "
      "occurred_at >= $2::timestamptz AND action = 'credential.reveal' AND subject_id = $3 AND "
      "COALESCE(actor, '') = $4 ORDER BY occurred_at DESC, id DESC LIMIT 1";
  if (is_postgres(store)) sql += " FOR UPDATE SKIP LOCKED";
  auto previous = query_one(store, sql,
                            {row.text("environment_id"), iso_from_ms(now - now % 60000),
                             row.text("id"), actor.value_or("")});
  if (previous) {
    Json detail = Json::parse(previous->text("detail"), nullptr, false);
    if (detail.is_object() && detail.contains("count") && detail["count"].is_number_integer()) {
      detail["count"] = detail["count"].get<int64_t>() + 1;
      detail["lastAt"] = iso_from_ms(now);
      execute(store, "UPDATE envdb.sys_audit_event SET detail = $2::jsonb WHERE id = $1",
              {previous->text("id"), detail.dump()});
      return;
    }
  }
  audit::Event e = event_for(row, "credential.reveal");
  e.detail["count"] = 1;
  e.detail["lastAt"] = iso_from_ms(now);
  audit::record(host, e);
}

// ---- SQL functions -------------------------------------------------------

Value issue(api::Call& c) {
  const std::string database_id = c.text("database_id", 128);
  const std::string scope = scope_arg(c);
  const auto expires_at = c.opt_timestamp("expires_at");
  if (expires_at && ms_from_iso(*expires_at).value_or(0) <= now_ms())
    fail(Code::invalid_parameter,
         "expires_at " + quote_value(*expires_at) + " is not in the future");

  Host& host = c.host;
  Store& store = c.store;
  Atomic tx(store);
  const Target target = load_target(store, database_id);
  bool generated = false;
  const crypto::SecretBytes token = token_arg(c, target, generated);
  host.keyring().active_key();  // key_unavailable before anything is written

  // One active credential per scope: an active one is superseded, and stays
  // valid for the rotation grace period as `rotating`.
  std::optional<std::string> superseded;
  if (auto previous = active_credential(store, database_id, scope)) {
    superseded = previous->text("id");
    vault::start_rotating(store, *superseded,
                          vault::expiry_in(
                              settings::setting_seconds(host, "rotation_grace_seconds")));
  }
  Json credential = vault::insert_sealed(host, database_id, scope, token.view(),
                                         expires_at ? expires_at : vault::new_expiry(host),
                                         superseded);
  audit::Event e = event_for(target, "credential.issue", credential["id"].get<std::string>());
  e.detail = Json{{"databaseId", database_id},
                  {"scope", scope},
                  {"kmsKeyId", credential["kmsKeyId"]},
                  {"tokenSource", generated ? "generated" : "caller"},
                  {"supersededId", json_text(superseded)}};
  audit::record(host, e);
  postgres::queue_job(host, database_id, "create_login", credential["id"].get<std::string>());
  tx.done();
  return api::json_result(Json{{"credential", credential}});
}

// rotate_credential on a turso database without a token: envdb cannot mint
// Turso tokens, so the worker is asked to (a create_login job). The active
// credential stays active until the job completes; then it is rotating for
// `grace` and the minted token is the active one (turso::complete).
Value rotate_by_mint(Host& host, const Target& target, const std::string& scope, int64_t grace) {
  Store& store = host.store();
  auto previous = active_credential(store, target.database_id, scope);
  if (!previous)
    fail(Code::not_found, "database_id " + quote_value(target.database_id) + " has no active " +
                              scope + " credential to rotate");
  const std::string previous_id = previous->text("id");
  auto job = turso::queue(host, target.database_id, "rotate", {previous_id}, grace);
  if (!job)
    fail(Code::conflict, "database_id " + quote_value(target.database_id) +
                             " is not provisioned at Turso yet; give token to rotate it");
  const std::string job_id = job->text("id");
  audit::Event e = event_for(target, "credential.rotate", previous_id);
  e.detail =
      Json{{"databaseId", target.database_id}, {"scope", scope},        {"tokenSource", "turso"},
           {"previousId", previous_id},        {"graceSeconds", grace}, {"jobId", job_id}};
  audit::record(host, e);
  return api::json_result(
      Json{{"credential", nullptr},
           {"previous", records::credential_json(
                            records::load_credential(store, "credential_id", previous_id))},
           {"job", records::job_json(*job)}});
}

Value rotate(api::Call& c) {
  const std::string database_id = c.text("database_id", 128);
  const std::string scope = scope_arg(c);
  const auto grace_arg = c.opt_seconds("grace");
  if (grace_arg && *grace_arg > vault::kMaxSeconds)
    fail(Code::invalid_parameter,
         "grace of " + std::to_string(*grace_arg) + " seconds is longer than 100 years");

  Host& host = c.host;
  Store& store = c.store;
  Atomic tx(store);
  const Target target = load_target(store, database_id);
  const int64_t grace = grace_arg ? *grace_arg
                                  : settings::setting_seconds(host, "rotation_grace_seconds");
  if (target.driver == "turso" && !c.opt_text("token", vault::kMaxTokenBytes)) {
    Value out = rotate_by_mint(host, target, scope, grace);
    tx.done();
    return out;
  }
  bool generated = false;
  const crypto::SecretBytes token = token_arg(c, target, generated);
  host.keyring().active_key();

  auto previous = active_credential(store, database_id, scope);
  if (!previous)
    fail(Code::not_found, "database_id " + quote_value(database_id) + " has no active " + scope +
                              " credential to rotate");
  const std::string previous_id = previous->text("id");
  vault::start_rotating(store, previous_id, vault::expiry_in(grace));
  Json credential = vault::insert_sealed(host, database_id, scope, token.view(),
                                         vault::new_expiry(host), previous_id);
  Json previous_json =
      records::credential_json(records::load_credential(store, "credential_id", previous_id));
  audit::Event e = event_for(target, "credential.rotate", credential["id"].get<std::string>());
  e.detail = Json{{"databaseId", database_id},
                  {"scope", scope},
                  {"kmsKeyId", credential["kmsKeyId"]},
                  {"tokenSource", generated ? "generated" : "caller"},
                  {"previousId", previous_id},
                  {"graceSeconds", grace},
                  {"previousExpiresAt", previous_json["expiresAt"]}};
  audit::record(host, e);
  postgres::queue_job(host, database_id, "create_login", credential["id"].get<std::string>());
  tx.done();
  return api::json_result(Json{{"credential", credential}, {"previous", previous_json}});
}

Value revoke(api::Call& c) {
  const std::string id = c.text("credential_id", 128);
  require_id("credential_id", id);
  Store& store = c.store;
  Atomic tx(store);
  auto row = query_one(store,
                       credential_with_owner_sql("c.id = $1") +
                           (is_postgres(store) ? " FOR UPDATE OF c" : ""),
                       {id});
  if (!row) fail(Code::not_found, "credential_id " + quote_value(id) + " names no credential");
  if (row->text("status") == "revoked")
    fail(Code::invalid_transition, "credential " + quote_value(id) + " is already revoked");
  execute(store,
          "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
          "$2::timestamptz WHERE id = $1",
          {id, now_iso()});
  audit::Event e = event_for(*row, "credential.revoke");
  e.detail["previousStatus"] = row->text("status");
  audit::record(c.host, e);
  postgres::queue_job(c.host, row->text("database_id"), "disable_login", id);
  turso::queue(c.host, row->text("database_id"), "revoke", {id});
  Json credential = records::credential_json(records::load_credential(store, "credential_id", id));
  tx.done();
  return api::json_result(Json{{"credential", credential}});
}

Value expire(api::Call& c) { return expire_due(c.host); }

}  // namespace

int64_t expire_due(Host& host) {
  Store& store = host.store();
  const std::string now = now_iso();
  Atomic tx(store);
  auto rows = query(store,
                    credential_with_owner_sql("c.status IN ('active', 'rotating') AND "
                                              "c.expires_at <= $1::timestamptz ORDER BY c.id") +
                        (is_postgres(store) ? " FOR UPDATE OF c" : ""),
                    {now});
  std::map<std::string, std::vector<std::string>> expired;  // database -> credentials
  for (const Row& row : rows) {
    execute(store,
            "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
            "$2::timestamptz WHERE id = $1",
            {row.text("id"), now});
    audit::Event e = event_for(row, "credential.expire");
    e.detail["previousStatus"] = row.text("status");
    e.detail["expiredAt"] = row.text("expires_at");
    audit::record(host, e);
    postgres::queue_job(host, row.text("database_id"), "disable_login", row.text("id"));
    expired[row.text("database_id")].push_back(row.text("id"));
  }
  // turso: one invalidation per database, however many of its credentials
  // expired.
  for (auto& [database_id, ids] : expired) turso::queue(host, database_id, "expire", ids);
  tx.done();
  return static_cast<int64_t>(rows.size());
}

namespace {

// A text column's value as rewrap reads it (Row::opt_text's conversions).
std::optional<std::string> column_text(Value v) {
  if (auto s = std::get_if<std::string>(&v)) return std::move(*s);
  if (auto b = std::get_if<Blob>(&v)) return std::move(b->bytes);
  if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto t = std::get_if<bool>(&v)) return std::string(*t ? "true" : "false");
  return std::nullopt;
}

Value rewrap(api::Call& c) {
  Keyring& keyring = c.host.keyring();
  std::string target;
  if (c.given("kms_key_id")) {
    target = c.text("kms_key_id", 128);
    keyring.key(target);  // key_unavailable when it is not loaded
  } else {
    keyring.active_key();  // key_unavailable when the keyring is empty
    target = keyring.active_id();
  }
  const crypto::SecretBytes& key = keyring.key(target);
  Store& store = c.store;
  const bool pg = is_postgres(store);

  Atomic tx(store);
  // What needs re-sealing: a live credential under another key, or under the
  // target key but still in envelope format 1 (re-sealed in place, bound to its
  // database's name and URL). Every read below walks an index in id order from
  // where the last batch stopped (keyset), so a batch costs the same at 1k and
  // at 1M credentials and the table is never re-scanned from its start.
  const Value bound_version =
      Blob{std::string(1, static_cast<char>(crypto::kEnvelopeVersionBound))};
  // SQLite: also the row's rowid, which its UPDATE below finds the row by
  // (no probe of the id index).
  const std::string columns =
      std::string(
          "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.token_cipher, d.driver, "
          "d.database_name, d.database_url") +
      (pg ? "" : ", c.rowid") +
      " FROM envdb.sys_database_credential c "
      "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
      "WHERE c.kms_key_id = $1 AND c.id > $2 AND c.status <> 'revoked'";
  const std::string tail =
      " ORDER BY c.id LIMIT " + std::to_string(kRewrapBatch) + (pg ? " FOR UPDATE OF c" : "");
  const std::string other_key_sql = columns + tail;
  const std::string unbound_sql = columns + " AND substr(c.token_cipher, 1, 1) <> $3::bytea" + tail;
  // The keys credentials are sealed under, one index probe each (a loose
  // index scan on sys_database_credential_kms_key_idx).
  const auto source_keys = [&] {
    std::vector<std::string> keys;
    for (const Row& r : query(store,
                              "WITH RECURSIVE k(id) AS (SELECT min(kms_key_id) FROM "
                              "envdb.sys_database_credential UNION ALL SELECT (SELECT "
                              "min(kms_key_id) FROM envdb.sys_database_credential WHERE "
                              "kms_key_id > k.id) FROM k WHERE k.id IS NOT NULL) "
                              "SELECT id FROM k WHERE id IS NOT NULL"))
      if (r.text("id") != target) keys.push_back(r.text("id"));
    return keys;
  };
  int64_t total = query_one(store,
                            "SELECT count(*) AS n FROM envdb.sys_database_credential c WHERE "
                            "c.status <> 'revoked' AND c.kms_key_id = $1 AND "
                            "substr(c.token_cipher, 1, 1) <> $2::bytea",
                            {target, bound_version})
                      ->integer("n");
  std::vector<std::string> keys = source_keys();
  for (const std::string& k : keys)
    total += query_one(store,
                       "SELECT count(*) AS n FROM envdb.sys_database_credential "
                       "WHERE kms_key_id = $1 AND status <> 'revoked'",
                       {k})
                 ->integer("n");

  int64_t moved = 0;
  std::map<std::string, int64_t> from;
  std::vector<vault::SealedRow> batch;
  batch.reserve(static_cast<size_t>(kRewrapBatch));
  std::vector<std::string> ciphers;
  std::vector<int64_t> rowids;  // SQLite
  ciphers.reserve(static_cast<size_t>(kRewrapBatch));
  vault::ResealMemo memo;  // the database of the last row re-sealed
  // SQLite: one prepared UPDATE per row (a step of a cached statement costs
  // less than building, binding and materializing a VALUES list), found by
  // the rowid read with it in this transaction. OR FAIL: the one-row UPDATE
  // can only fail before it writes, so SQLite skips the statement journal it
  // would open per execution; on any error the call's savepoint undoes the
  // whole call all the same. Postgres: the batch's new envelopes go back in
  // one statement, as one UPDATE per row would cost an SPI execution each.
  const std::string row_update_sql =
      "UPDATE OR FAIL envdb.sys_database_credential SET token_cipher = $1, kms_key_id = $2 WHERE "
      "rowid = $3";
  // One keyset walk over the rows `sql` selects; returns how many it moved.
  const auto walk = [&](const std::string& sql, const std::string& source) {
    int64_t here = 0;
    std::string after;  // every id sorts after the empty string
    for (;;) {
      // The batch is read by column position into plain strings: no Row, no
      // lookup by name.
      batch.clear();
      rowids.clear();
      {
        auto read = store.prepare(sql);
        read->bind(1, source);
        read->bind(2, after);
        if (source == target) read->bind(3, bound_version);
        while (read->step()) {
          vault::SealedRow r;
          r.id = column_text(read->column(0)).value_or("");
          r.database_id = column_text(read->column(1)).value_or("");
          r.scope = column_text(read->column(2)).value_or("");
          r.kms_key_id = column_text(read->column(3)).value_or("");
          r.token_cipher = read->column(4);
          r.driver = column_text(read->column(5)).value_or("");
          r.identity.name = column_text(read->column(6)).value_or("");
          r.identity.url = column_text(read->column(7));
          batch.push_back(std::move(r));
          if (!pg) rowids.push_back(std::get<int64_t>(read->column(8)));
        }
      }
      if (batch.empty()) break;
      ciphers.clear();
      for (const vault::SealedRow& r : batch) {
        ciphers.push_back(vault::reseal_bound(c.host, r, key, memo));
        ++from[r.kms_key_id];
      }
      if (pg) {
        std::vector<Value> update_params{target};
        std::string values;
        update_params.reserve(batch.size() * 2 + 1);
        for (size_t i = 0; i < batch.size(); ++i) {
          const size_t n = update_params.size();
          values += (values.empty() ? "($" : ", ($") + std::to_string(n + 1) + ", $" +
                    std::to_string(n + 2) + "::bytea)";
          update_params.push_back(batch[i].id);
          update_params.push_back(Blob{std::move(ciphers[i])});
        }
        execute(store,
                "UPDATE envdb.sys_database_credential AS c SET token_cipher = v.column2, "
                "kms_key_id = $1 FROM (VALUES " +
                    values + ") AS v WHERE c.id = v.column1",
                update_params);
      } else {
        for (size_t i = 0; i < batch.size(); ++i) {
          auto update = store.prepare(row_update_sql);
          update->bind(1, Blob{std::move(ciphers[i])});
          update->bind(2, target);
          update->bind(3, rowids[i]);
          while (update->step()) {
          }
        }
      }
      after = batch.back().id;
      here += static_cast<int64_t>(batch.size());
      moved += static_cast<int64_t>(batch.size());
      total = std::max(total, moved);  // Postgres: rows committed meanwhile join in
      c.host.notice("rewrapped " + std::to_string(moved) + " of " + std::to_string(total) +
                    " credentials to key " + quote_value(target));
    }
    return here;
  };
  // Format-1 envelopes under the target key first, while those are the only
  // rows under it; then every other key. A credential committed under an old
  // key by another session during the walk (Postgres) is found by the next
  // round, which the index makes cheap: it reads only what is still pending.
  walk(unbound_sql, target);
  for (;;) {
    int64_t round = 0;
    for (const std::string& k : keys) round += walk(other_key_sql, k);
    if (round == 0) break;
    keys = source_keys();
  }
  if (moved > 0) {
    audit::Event e;
    e.action = "credential.rewrap";
    e.subject_type = "key";
    e.subject_id = target;
    Json sources = Json::object();
    for (auto& [id, n] : from) sources[id] = n;
    e.detail = Json{{"kmsKeyId", target}, {"credentials", moved}, {"from", sources}};
    audit::record(c.host, e);
  }
  tx.done();
  return moved;
}

Value reveal(api::Call& c) {
  const std::string id = c.text("credential_id", 128);
  require_id("credential_id", id);
  Store& store = c.store;
  auto row = query_one(
      store,
      "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.token_cipher, c.status, c.expires_at, "
      "(c.expires_at IS NOT NULL AND c.expires_at <= $2::timestamptz) AS expired, "
      "d.environment_id, d.driver, d.database_name, d.database_url, e.organization_id "
      "FROM envdb.sys_database_credential c "
      "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
      "JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE c.id = $1",
      {id, now_iso()});
  if (!row) fail(Code::not_found, "credential_id " + quote_value(id) + " names no credential");
  if (row->text("status") == "revoked")
    fail(Code::conflict, "credential " + quote_value(id) + " is revoked");
  if (row->boolean("expired"))
    fail(Code::conflict,
         "credential " + quote_value(id) + " expired at " + row->text("expires_at"));
  // A secret leaves only with an audit record. Where none can be written (a
  // READ ONLY transaction, a hot standby) the reveal is refused, unless the
  // operator allowed unaudited reveals (setting allow_unaudited_reveal).
  const bool audited = store.writable();
  if (!audited && settings::setting(c.host, "allow_unaudited_reveal") != "on")
    fail(Code::permission_denied,
         "credential_id " + quote_value(id) +
             " cannot be revealed here: no audit event can be written (a READ ONLY transaction "
             "or a hot standby); reveal on a writable primary, or set allow_unaudited_reveal");
  crypto::SecretBytes token = vault::open_secret(c.host, *row);
  if (audited) record_reveal(c.host, *row);
  return std::string(token.view());
}

Value keyring_status(api::Call& c) {
  Keyring& keyring = c.host.keyring();
  std::map<std::string, int64_t> live;  // referenced key -> credentials not revoked
  for (const Row& r : query(c.store,
                            "SELECT kms_key_id, sum(CASE WHEN status <> 'revoked' THEN 1 ELSE 0 "
                            "END) AS live FROM envdb.sys_database_credential GROUP BY kms_key_id"))
    live[r.text("kms_key_id")] = r.integer("live");
  Json out = Json::array();
  for (const std::string& id : keyring.ids()) {
    auto it = live.find(id);
    out.push_back(Json{{"kmsKeyId", id},
                       {"active", id == keyring.active_id()},
                       {"loaded", true},
                       {"credentials", it == live.end() ? 0 : it->second}});
  }
  for (auto& [id, n] : live) {
    if (keyring.has(id)) continue;
    out.push_back(Json{{"kmsKeyId", id}, {"active", false}, {"loaded", false}, {"credentials", n}});
  }
  return api::json_result(out);
}

Value keyring_add(api::Call& c) {
  const std::string id = c.text("kms_key_id", 128);
  require_id("kms_key_id", id);
  // Never quoted: this is key material.
  const crypto::SecretBytes text(c.text("key_base64", 1024));
  std::optional<std::string> decoded = crypto::base64_decode(text.view());
  if (!decoded) fail(Code::invalid_parameter, "key_base64 is not valid base64 (standard alphabet)");
  crypto::SecretBytes key(std::move(*decoded));
  if (key.size() != crypto::kKeySize)
    fail(Code::invalid_parameter,
         "key_base64 must decode to exactly 32 bytes, got " + std::to_string(key.size()));
  c.host.keyring().add(id, std::move(key));
  return "added " + id;
}

Value keyring_use(api::Call& c) {
  const std::string id = c.text("kms_key_id", 128);
  c.host.keyring().use(id);
  return "using " + id;
}

}  // namespace

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"issue_credential",
       {{"database_id", T::text, nullptr},
        {"scope", T::text, "'readwrite'"},
        {"token", T::text, "NULL"},
        {"expires_at", T::timestamp, "NULL"}},
       T::json,
       issue,
       kWrites | kRequestForm,
       kAdmin,
       "issue an active credential of a scope (token generated unless given; required for turso); "
       "an active one of that scope becomes rotating until now + rotation_grace_seconds"},
      {"rotate_credential",
       {{"database_id", T::text, nullptr},
        {"scope", T::text, "'readwrite'"},
        {"grace", T::interval, "NULL"},
        {"token", T::text, "NULL"}},
       T::json,
       rotate,
       kWrites | kRequestForm,
       kAdmin,
       "replace the active credential of a scope; the previous one stays valid as rotating until "
       "now + grace (default rotation_grace_seconds)"},
      {"revoke_credential",
       {{"credential_id", T::text, nullptr}},
       T::json,
       revoke,
       kWrites,
       kAdmin,
       "revoke one credential"},
      {"expire_credentials",
       {},
       T::integer,
       expire,
       kWrites,
       kAdmin,
       "revoke every active or rotating credential whose expires_at has passed; returns how many"},
      {"rewrap_credentials",
       {{"kms_key_id", T::text, "NULL"}},
       T::integer,
       rewrap,
       kWrites,
       kAdmin,
       "re-encrypt every credential not revoked under the given (or active) key; returns how many "
       "moved"},
      {"reveal_credential",
       {{"credential_id", T::text, nullptr}},
       T::text,
       reveal,
       0,
       kAdmin | kRouter,
       "the plaintext token of a credential that is not revoked or expired; audited (repeated "
       "reveals of one credential by one caller within a minute are counted on one event); "
       "refused where no audit event can be written unless allow_unaudited_reveal is on"},
      {"keyring_status",
       {},
       T::json,
       keyring_status,
       0,
       kAdmin,
       "keys loaded or referenced by credentials, with counts; never key material"},
      {"keyring_add",
       {{"kms_key_id", T::text, nullptr}, {"key_base64", T::text, nullptr}},
       T::text,
       keyring_add,
       kSqliteOnly,
       kAdmin,
       "add a 32-byte key (base64) to this connection's keyring"},
      {"keyring_use",
       {{"kms_key_id", T::text, nullptr}},
       T::text,
       keyring_use,
       kSqliteOnly,
       kAdmin,
       "make a loaded key the active key for new ciphertexts"},
  };
}

int64_t revoke_all(Host& host, const std::string& database_id) {
  auto rows = query(host.store(),
                    "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
                    "$2::timestamptz WHERE database_id = $1 AND status <> 'revoked' RETURNING id",
                    {database_id, now_iso()});
  return static_cast<int64_t>(rows.size());
}

}  // namespace envdb::credentials
