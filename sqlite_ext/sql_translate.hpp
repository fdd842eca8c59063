// The core writes SQL in Postgres form (see shared/core/store.hpp). SQLite reads it
// after three mechanical rewrites, outside quoted text:
//   $N          -> ?N          (numbered parameters)
//   expr::type  -> expr        (SQLite is dynamically typed)
//   envdb.name  -> name        (the catalog lives in the main database)
#pragma once

#include <string>

namespace envdb::sqlite {
std::string translate_sql(const std::string& postgres_sql);
}
