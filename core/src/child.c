/* child.c - see child.h. */
#include "child.h"

#include <unistd.h>

#include "config.h"

#if CNB_COVERAGE /* -Db_coverage=true defines no macro of its own: meson.build sets it */
void __gcov_dump(void); /* libgcov (gcc) or compiler-rt (clang), linked by --coverage */
#endif

void cnb_child_exit(int status)
{
#if CNB_COVERAGE
    __gcov_dump();
#endif
    _exit(status);
}
