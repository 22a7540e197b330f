/* fuzz_calc.c -- libFuzzer target: tool.calc's expression evaluator (workers/tools/calc.c), a
 * recursive-descent parser fed by models and templates. Depth, number and length limits must
 * hold for every input. */
#include "../../workers/tools/calc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *expr = malloc(size + 1);
    memcpy(expr, data, size);
    expr[size] = 0;
    double v;
    phx_err err;
    phx_calc_eval(expr, &v, &err);
    free(expr);
    return 0;
}
