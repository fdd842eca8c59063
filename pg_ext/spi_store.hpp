// The store port over SPI. One SpiStore lives for one SQL call, between
// SPI_connect and SPI_finish.
//
// Savepoints are no-ops here, deliberately: Postgres runs each SQL call inside
// its statement's transaction, and the entry point re-raises any failure as an
// ERROR, which rolls back everything the call wrote (or, inside a PL/pgSQL
// exception block, its subtransaction). The core never continues after a store
// error, so there is nothing for an inner savepoint to add.
#pragma once

#include "core/store.hpp"

namespace envdb::pg {

class SpiStore : public Store {
 public:
  Dialect dialect() const override { return Dialect::postgres; }
  std::unique_ptr<Statement> prepare(const std::string& sql) override;
  void exec(const std::string& sql) override;
  void savepoint(const std::string&) override {}
  void release(const std::string&) override {}
  void rollback_to(const std::string&) override {}
  bool writable() override;
};

void spi_connect();
void spi_finish();

}  // namespace envdb::pg
