#include "spi_store.hpp"

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "pg_guard.hpp"

namespace envdb::pg {

namespace {

// Postgres epoch (2000-01-01) in Unix milliseconds.
constexpr int64_t kPostgresEpochMs = 946684800000LL;

// Saved plans for the life of the backend, by SQL text and parameter types.
// A backend runs one query at a time, so this map needs no lock; Postgres
// revalidates saved plans itself when the catalog changes.
std::unordered_map<std::string, SPIPlanPtr>& plan_cache() {
  static std::unordered_map<std::string, SPIPlanPtr> cache;
  return cache;
}

Oid type_of(const Value& v) {
  if (std::holds_alternative<int64_t>(v)) return INT8OID;
  if (std::holds_alternative<bool>(v)) return BOOLOID;
  if (std::holds_alternative<double>(v)) return FLOAT8OID;
  if (std::holds_alternative<Blob>(v)) return BYTEAOID;
  return TEXTOID;  // text, and NULL (the core casts where the column is not text)
}

class SpiStatement : public Statement {
 public:
  explicit SpiStatement(std::string sql) : sql_(std::move(sql)) {}
  ~SpiStatement() override {
    if (table_) SPI_freetuptable(table_);
  }

  void bind(int index, const Value& value) override {
    if (index < 1) throw Error(Code::internal, "parameter index starts at 1");
    if (params_.size() < static_cast<size_t>(index)) params_.resize(static_cast<size_t>(index));
    params_[static_cast<size_t>(index - 1)] = value;
  }

  bool step() override {
    if (!executed_) execute();
    if (row_ < rows_) {
      ++row_;
      return true;
    }
    return false;
  }

  int column_count() const override { return table_ ? table_->tupdesc->natts : 0; }

  std::string column_name(int c) const override {
    return NameStr(TupleDescAttr(table_->tupdesc, c)->attname);
  }

  Value column(int c) const override {
    HeapTuple tuple = table_->vals[row_ - 1];
    TupleDesc desc = table_->tupdesc;
    const Oid type = TupleDescAttr(desc, c)->atttypid;
    bool isnull = false;
    Datum d = guarded([&] { return SPI_getbinval(tuple, desc, c + 1, &isnull); });
    if (isnull) return null_value();
    switch (type) {
      case BOOLOID: return static_cast<bool>(DatumGetBool(d));
      case INT2OID: return static_cast<int64_t>(DatumGetInt16(d));
      case INT4OID: return static_cast<int64_t>(DatumGetInt32(d));
      case INT8OID: return static_cast<int64_t>(DatumGetInt64(d));
      case FLOAT8OID: return DatumGetFloat8(d);
      case TIMESTAMPTZOID: {
        const TimestampTz ts = DatumGetTimestampTz(d);
        if (TIMESTAMP_NOT_FINITE(ts)) return std::string(ts < 0 ? "-infinity" : "infinity");
        int64_t ms = ts / 1000;
        if (ts % 1000 < 0) --ms;  // floor for instants before 2000
        return iso_from_ms(ms + kPostgresEpochMs);
      }
      case BYTEAOID:
      case TEXTOID:
      case VARCHAROID: {
        struct varlena* v = guarded([&] { return pg_detoast_datum_packed((struct varlena*)DatumGetPointer(d)); });
        std::string bytes(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
        if (type == BYTEAOID) return Blob{std::move(bytes)};
        return bytes;
      }
      case JSONBOID: {
        char* text = guarded([&] {
          Jsonb* jb = DatumGetJsonbP(d);
          return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
        });
        return std::string(text);
      }
      default: {
        char* text = guarded([&] { return SPI_getvalue(tuple, desc, c + 1); });
        return std::string(text ? text : "");
      }
    }
  }

 private:
  void execute() {
    executed_ = true;
    const int n = static_cast<int>(params_.size());
    std::vector<Oid> types(params_.size());
    std::string key = sql_;
    key += '\x01';
    for (size_t i = 0; i < params_.size(); ++i) {
      types[i] = type_of(params_[i]);
      key += std::to_string(types[i]) + ",";
    }
    auto& cache = plan_cache();
    auto it = cache.find(key);
    SPIPlanPtr plan = nullptr;
    if (it != cache.end()) {
      plan = it->second;
    } else {
      const char* sql = sql_.c_str();
      Oid* type_array = types.data();
      plan = guarded([&] {
        SPIPlanPtr p = SPI_prepare(sql, n, type_array);
        if (p == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(p);
        return p;
      });
      cache.emplace(std::move(key), plan);
    }
    // Datums point into params_, which outlives the execution.
    std::vector<Datum> values(params_.size());
    std::vector<char> nulls(params_.size(), ' ');
    std::vector<struct varlena*> owned;
    for (size_t i = 0; i < params_.size(); ++i) {
      const Value& v = params_[i];
      if (is_null(v)) {
        nulls[i] = 'n';
        values[i] = (Datum)0;
      } else if (auto iv = std::get_if<int64_t>(&v)) {
        values[i] = Int64GetDatum(*iv);
      } else if (auto b = std::get_if<bool>(&v)) {
        values[i] = BoolGetDatum(*b);
      } else if (auto dv = std::get_if<double>(&v)) {
        values[i] = Float8GetDatum(*dv);
      } else {
        const std::string& bytes =
            std::holds_alternative<Blob>(v) ? std::get<Blob>(v).bytes : std::get<std::string>(v);
        const char* data = bytes.data();
        const size_t len = bytes.size();
        struct varlena* var = guarded([&] {
          auto* p = static_cast<struct varlena*>(palloc(len + VARHDRSZ));
          SET_VARSIZE(p, len + VARHDRSZ);
          memcpy(VARDATA(p), data, len);
          return p;
        });
        values[i] = PointerGetDatum(var);
      }
    }
    Datum* value_array = values.data();
    const char* null_array = nulls.data();
    const int rc = guarded([&] { return SPI_execute_plan(plan, value_array, null_array, false, 0); });
    if (rc < 0) throw Error(Code::internal, std::string("SPI failed: ") + SPI_result_code_string(rc));
    table_ = SPI_tuptable;
    rows_ = table_ ? SPI_processed : 0;
  }

  std::string sql_;
  std::vector<Value> params_;
  bool executed_ = false;
  SPITupleTable* table_ = nullptr;
  uint64 rows_ = 0;
  uint64 row_ = 0;
};

}  // namespace

void throw_error_data(ErrorData* edata) {
  const int code = edata->sqlerrcode;
  const std::string message = edata->message ? edata->message : "unknown error";
  char state[6];
  int c = code;
  for (int i = 0; i < 5; ++i) {
    state[i] = PGUNSIXBIT(c);
    c >>= 6;
  }
  state[5] = '\0';
  FreeErrorData(edata);
  Code fallback = Code::internal;
  if (code == ERRCODE_UNIQUE_VIOLATION) fallback = Code::already_exists;
  else if (code == ERRCODE_CHECK_VIOLATION || code == ERRCODE_NOT_NULL_VIOLATION) fallback = Code::invalid_parameter;
  else if (code == ERRCODE_FOREIGN_KEY_VIOLATION) fallback = Code::not_found;
  else if (code == ERRCODE_INSUFFICIENT_PRIVILEGE || code == ERRCODE_READ_ONLY_SQL_TRANSACTION) fallback = Code::permission_denied;
  else if (code == ERRCODE_T_R_SERIALIZATION_FAILURE || code == ERRCODE_T_R_DEADLOCK_DETECTED || code == ERRCODE_LOCK_NOT_AVAILABLE) fallback = Code::conflict;
  // Contract errors keep the contract's SQLSTATE; anything else keeps its own.
  throw_host_error(fallback, message, fallback == Code::internal ? std::string(state) : "");
}

std::unique_ptr<Statement> SpiStore::prepare(const std::string& sql) {
  return std::make_unique<SpiStatement>(sql);
}

void SpiStore::exec(const std::string& sql) {
  const char* text = sql.c_str();
  const int rc = guarded([&] { return SPI_execute(text, false, 0); });
  if (rc < 0) throw Error(Code::internal, std::string("SPI failed: ") + SPI_result_code_string(rc));
}

bool SpiStore::writable() {
  // Neither a hot standby nor a READ ONLY transaction on a primary takes writes.
  return !guarded([] { return RecoveryInProgress() || XactReadOnly; });
}

void spi_connect() {
  const int rc = guarded([] { return SPI_connect(); });
  if (rc != SPI_OK_CONNECT) throw Error(Code::internal, "SPI_connect failed");
}

void spi_finish() {
  guarded([] { SPI_finish(); });
}

}  // namespace envdb::pg
