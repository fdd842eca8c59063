// jsonb straight from the JSON text the core answers with. jsonb_in runs
// PostgreSQL's general JSON parser and then builds the value through
// pushJsonbValue, sorting every object's keys with qsort; for a
// resolve_environment answer that cost more than the resolve itself. The text
// the core writes is compact and mostly ASCII, so this reads it with a small
// parser and lays out the binary form directly, byte for byte what jsonb_in
// makes of the same text (keys ordered by length, then bytes; numbers through
// numeric_in, as jsonb_in does).
#pragma once

extern "C" {
#include "postgres.h"

#include "utils/jsonb.h"
}

#include <string>

namespace envdb::pg {

// The jsonb of `text` (palloc'd in the current memory context), or nullptr
// when the text holds something this does not read: bytes beyond ASCII,
// \u escapes, a duplicate key, a scalar at the top, nesting deeper than 64,
// or anything that is not JSON. The caller then passes the text to jsonb_in,
// which decides (and refuses what is not JSON, as before).
Jsonb* jsonb_from_text(const std::string& text);

}  // namespace envdb::pg
