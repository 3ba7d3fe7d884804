// libxcrypt (Debian's libcrypt1): bcrypt password hashing for end-user auth.
#include <crypt.h>
