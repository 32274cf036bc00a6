/* out.h - the command line's output: every line through say(). */
#ifndef QSTORE_CLI_OUT_H
#define QSTORE_CLI_OUT_H

#include <stdint.h>
#include <stdio.h>

/* One line of output.  Every name in it comes from a file (tensor names,
 * paths, messages quoting them): control characters are shown as \xNN so
 * that a name cannot move the cursor, recolour the terminal or fake lines. */
void say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* BYTES with a decimal unit ("512 B", "45.4 kB", "1.33 GB") into OUT. */
const char *human_bytes(uint64_t bytes, char out[16]);

#endif
