#include "spi_store.hpp"

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
}

#include <string>
#include <unordered_map>
#include <vector>

#include "datum.hpp"
#include "pg_guard.hpp"

namespace envdb::pg {

namespace {

// Saved plans for the life of the backend, by SQL text and parameter types.
// A backend runs one query at a time, so this map needs no lock; Postgres
// revalidates saved plans itself when the catalog changes.
std::unordered_map<std::string, SPIPlanPtr>& plan_cache() {
  static std::unordered_map<std::string, SPIPlanPtr> cache;
  return cache;
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
    bool isnull = false;
    const Datum d = guarded([&] { return SPI_getbinval(tuple, desc, c + 1, &isnull); });
    if (isnull) return null_value();
    return column_value(d, TupleDescAttr(desc, c)->atttypid);
  }

 private:
  void execute() {
    executed_ = true;
    const int n = static_cast<int>(params_.size());
    std::vector<Oid> types(params_.size());
    std::string key = sql_;
    key += '\x01';
    for (size_t i = 0; i < params_.size(); ++i) {
      types[i] = param_type(params_[i]);
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
    // Text and bytea Datums are palloc'd copies, freed with the call's memory.
    std::vector<Datum> values(params_.size());
    std::vector<char> nulls(params_.size(), ' ');
    for (size_t i = 0; i < params_.size(); ++i) {
      if (is_null(params_[i]))
        nulls[i] = 'n';
      else
        values[i] = param_datum(params_[i]);
    }
    Datum* value_array = values.data();
    const char* null_array = nulls.data();
    const int rc =
        guarded([&] { return SPI_execute_plan(plan, value_array, null_array, false, 0); });
    if (rc < 0)
      throw Error(Code::internal, std::string("SPI failed: ") + SPI_result_code_string(rc));
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
  if (code == ERRCODE_UNIQUE_VIOLATION)
    fallback = Code::already_exists;
  else if (code == ERRCODE_CHECK_VIOLATION || code == ERRCODE_NOT_NULL_VIOLATION)
    fallback = Code::invalid_parameter;
  else if (code == ERRCODE_FOREIGN_KEY_VIOLATION)
    fallback = Code::not_found;
  else if (code == ERRCODE_INSUFFICIENT_PRIVILEGE || code == ERRCODE_READ_ONLY_SQL_TRANSACTION)
    fallback = Code::permission_denied;
  else if (code == ERRCODE_T_R_SERIALIZATION_FAILURE || code == ERRCODE_T_R_DEADLOCK_DETECTED ||
           code == ERRCODE_LOCK_NOT_AVAILABLE)
    fallback = Code::conflict;
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
