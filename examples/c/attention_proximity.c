/* attnprox from C: load a model file, run a text, print its Attention Proximity, APE and the strongest arcs of
 * its last token.
 *
 *   cc -std=c99 attention_proximity.c $(pkg-config --cflags --libs attnprox) -o attention_proximity
 *   (or with CMake: CMakeLists.txt beside this file, find_package(attnprox) and target attnprox::attnprox_c)
 *   ./attention_proximity MODEL.apx "The bank by the river was steep."
 */
#include <attnprox/attnprox.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, apx_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]);
    return 2;
  }
  if (apx_abi_version() != APX_ABI_VERSION) {
    fprintf(stderr, "built against ABI %d, running with %d\n", APX_ABI_VERSION, apx_abi_version());
    return 1;
  }
  apx_model* model = NULL;
  if (apx_model_load(argv[1], NULL, &model) != APX_OK) return fail("load");
  apx_result* result = NULL;
  if (apx_model_run_text(model, argv[2], (size_t)-1, NULL, &result) != APX_OK) return fail("run");

  size_t n = 0;
  double ap = 0;
  apx_ape_report ape;
  ape.struct_size = sizeof ape;
  apx_result_num_tokens(result, &n);
  if (apx_result_ap(result, -1, &ap) != APX_OK) return fail("ap");
  if (apx_result_ape(result, -1, APX_APE_DEFAULT, &ape, NULL, 0, NULL) != APX_OK) return fail("ape");
  printf("N=%zu AP=%.9f APE=%.9f normalized=%.9f undefined=%lld\n", n, ap, ape.value, ape.normalized,
         (long long)ape.undefined_rows);

  apx_encoding* tokens = NULL;
  int64_t keys[3];
  double weights[3];
  size_t count = 0;
  if (apx_result_encoding(result, &tokens) != APX_OK) return fail("encoding");
  if (apx_result_top_arcs(result, -1, -1, (int64_t)n - 1, 3, 1.0, keys, weights, 3, &count) != APX_OK) {
    return fail("top_arcs");
  }
  for (size_t i = 0; i < count; ++i) printf("arc %s -> %s %.6f\n", tokens->tokens[n - 1], tokens->tokens[keys[i]], weights[i]);
  apx_encoding_free(tokens);
  apx_result_free(result);
  apx_model_free(model);
  return 0;
}
