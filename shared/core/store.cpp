#include "core/store.hpp"

namespace envdb {

const Value& Row::operator[](const std::string& name) const {
  for (size_t i = 0; i < names_->size(); ++i)
    if ((*names_)[i] == name) return values_[i];
  throw Error(Code::internal, "result has no column " + name);
}

std::string Row::text(const std::string& name) const {
  auto v = opt_text(name);
  return v ? *v : std::string();
}

std::optional<std::string> Row::opt_text(const std::string& name) const {
  const Value& v = (*this)[name];
  if (auto s = std::get_if<std::string>(&v)) return *s;
  if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto b = std::get_if<bool>(&v)) return std::string(*b ? "true" : "false");
  if (auto blob = std::get_if<Blob>(&v)) return blob->bytes;
  return std::nullopt;
}

int64_t Row::integer(const std::string& name) const {
  const Value& v = (*this)[name];
  if (auto i = std::get_if<int64_t>(&v)) return *i;
  if (auto b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  if (auto d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (auto s = std::get_if<std::string>(&v)) return std::stoll(*s);
  return 0;
}

bool Row::boolean(const std::string& name) const {
  const Value& v = (*this)[name];
  if (auto b = std::get_if<bool>(&v)) return *b;
  if (auto i = std::get_if<int64_t>(&v)) return *i != 0;
  if (auto s = std::get_if<std::string>(&v)) return *s == "t" || *s == "true" || *s == "1";
  return false;
}

std::vector<Row> query(Store& store, const std::string& sql, const std::vector<Value>& params) {
  auto stmt = store.prepare(sql);
  for (size_t i = 0; i < params.size(); ++i) stmt->bind(static_cast<int>(i + 1), params[i]);
  std::vector<Row> rows;
  std::shared_ptr<std::vector<std::string>> names;
  while (stmt->step()) {
    if (!names) {
      names = std::make_shared<std::vector<std::string>>();
      for (int c = 0; c < stmt->column_count(); ++c) names->push_back(stmt->column_name(c));
    }
    std::vector<Value> values;
    values.reserve(names->size());
    for (int c = 0; c < stmt->column_count(); ++c) values.push_back(stmt->column(c));
    rows.emplace_back(names, std::move(values));
  }
  return rows;
}

std::optional<Row> query_one(Store& store, const std::string& sql,
                             const std::vector<Value>& params) {
  auto rows = query(store, sql, params);
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

void execute(Store& store, const std::string& sql, const std::vector<Value>& params) {
  auto stmt = store.prepare(sql);
  for (size_t i = 0; i < params.size(); ++i) stmt->bind(static_cast<int>(i + 1), params[i]);
  while (stmt->step()) {
  }
}

Atomic::Atomic(Store& store, std::string name) : store_(store), name_(std::move(name)) {
  store_.savepoint(name_);
}

Atomic::~Atomic() {
  if (!open_) return;
  try {
    store_.rollback_to(name_);
    store_.release(name_);
  } catch (...) {
    // The store already failed; the host aborts the statement anyway.
  }
}

void Atomic::done() {
  store_.release(name_);
  open_ = false;
}

}  // namespace envdb
