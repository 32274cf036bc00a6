/* commands.h - the subcommands that live in files of their own (qstore.c
 * parses their options and calls them). */
#ifndef QSTORE_CLI_COMMANDS_H
#define QSTORE_CLI_COMMANDS_H

#include "qstore.h"

/* info.c: the summary, files and tensors of CT (opened from PATH). */
int qstore_info(qs_container *ct, const char *path);
/* hublink.c: MODEL_DIR (a mounted model) as ORG/REPO in the hub cache
 * CACHE, the high view or (VIEW) the INT8 one.  0 or 1, or 2 for usage. */
int qstore_hub_link(const char *model_dir, const char *repo, const char *cache, int view);

#endif
