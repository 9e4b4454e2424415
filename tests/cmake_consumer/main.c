/* attnprox from C99 in a project that builds it (tests/cmake_consumer): the version, and the AP of a text. */
#include <attnprox/attnprox.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char** argv) {
  apx_model* model = NULL;
  apx_result* result = NULL;
  size_t tokens = 0;
  double ap = 0;
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]);
    return 2;
  }
  if (apx_model_load(argv[1], NULL, &model) != APX_OK ||
      apx_model_run_text(model, argv[2], SIZE_MAX, NULL, &result) != APX_OK ||
      apx_result_num_tokens(result, &tokens) != APX_OK || apx_result_ap(result, -1, &ap) != APX_OK) {
    fprintf(stderr, "%s\n", apx_last_error());
    apx_result_free(result);
    apx_model_free(model);
    return 1;
  }
  printf("attnprox %s: N=%zu AP=%.9f\n", apx_version(), tokens, ap);
  apx_result_free(result);
  apx_model_free(model);
  return 0;
}
