// The store port: the only way the core reaches a database. Each host adapts
// it (SPI in Postgres, the sqlite3 API in SQLite).
//
// SQL dialect. The core writes each statement once, in Postgres form:
// positional parameters $1..$N, explicit casts (`$3::timestamptz`) and
// schema-qualified names (`envdb.sys_environment`). The SQLite adapter
// translates that form mechanically (see sqlite_ext/sql_translate) and the
// core asks `dialect()` only where the two engines genuinely differ
// (row locking, DDL).
//
// Errors. A store failure throws envdb::Error: unique violations become
// already_exists, check violations invalid_parameter, anything else internal.
// A store error ends the call: the core never issues another statement after
// one failed (in Postgres the transaction is aborted at that point).
#pragma once
#include "core/cpp_only.hpp"

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "core/value.hpp"

namespace envdb {

enum class Dialect { postgres, sqlite };

class Statement {
 public:
  virtual ~Statement() = default;
  virtual void bind(int index, const Value& value) = 0;  // index of $N, from 1
  virtual bool step() = 0;                               // true while a row is available
  virtual int column_count() const = 0;
  virtual std::string column_name(int column) const = 0;  // from 0
  virtual Value column(int column) const = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual Dialect dialect() const = 0;
  virtual std::unique_ptr<Statement> prepare(const std::string& sql) = 0;
  // One or more statements without parameters (DDL).
  virtual void exec(const std::string& sql) = 0;
  virtual void savepoint(const std::string& name) = 0;
  virtual void release(const std::string& name) = 0;
  virtual void rollback_to(const std::string& name) = 0;
  // False on a read-only Postgres hot standby: the core then skips writes that
  // are only bookkeeping (last_accessed_at).
  virtual bool writable() { return true; }
};

// A result row with its column names.
class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> names, std::vector<Value> values)
      : names_(std::move(names)), values_(std::move(values)) {}
  const Value& operator[](const std::string& name) const;
  const Value& at(size_t i) const { return values_.at(i); }
  size_t size() const { return values_.size(); }
  const std::vector<std::string>& names() const { return *names_; }

  // Typed reads; a NULL gives the empty/zero value or nullopt.
  std::string text(const std::string& name) const;
  std::optional<std::string> opt_text(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  bool boolean(const std::string& name) const;

 private:
  std::shared_ptr<const std::vector<std::string>> names_;
  std::vector<Value> values_;
};

std::vector<Row> query(Store& store, const std::string& sql, const std::vector<Value>& params = {});
std::optional<Row> query_one(Store& store, const std::string& sql,
                             const std::vector<Value>& params = {});
void execute(Store& store, const std::string& sql, const std::vector<Value>& params = {});

// Makes a multi-statement change all-or-nothing. Commit with done(); leaving
// the scope without it rolls back to the savepoint.
class Atomic {
 public:
  explicit Atomic(Store& store, std::string name = "envdb_call");
  ~Atomic();
  void done();
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

 private:
  Store& store_;
  std::string name_;
  bool open_ = true;
};

inline bool is_postgres(const Store& store) { return store.dialect() == Dialect::postgres; }

}  // namespace envdb
