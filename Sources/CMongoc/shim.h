// libmongoc (and libbson) for MongoDB sources. Their API is plain functions, which Swift calls
// directly; the few macros Swift cannot import (BSON_APPEND_*, MONGOC_URI_* strings) are not used.
#include <mongoc/mongoc.h>
