// The C ABI: tokenizers (the section "tokenizers" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

apx_status apx_tokenizer_from_file(const char* path, apx_tokenizer** tokenizer) {
  return call([&] {
    need(path, "path");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = make_handle<apx_tokenizer>(tokenizers(), TokenizerObject{attnprox::Tokenizer::from_file(path)});
  });
}

apx_status apx_tokenizer_from_json(const char* json, size_t length, apx_tokenizer** tokenizer) {
  return call([&] {
    need(json, "json");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = make_handle<apx_tokenizer>(tokenizers(),
                                            TokenizerObject{attnprox::Tokenizer::from_json(text_of(json, length))});
  });
}

apx_status apx_tokenizer_byte_level_bpe(const char* vocab_json, const char* merges_txt, apx_tokenizer** tokenizer) {
  return call([&] {
    need(vocab_json, "vocab_json");
    need(merges_txt, "merges_txt");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = make_handle<apx_tokenizer>(
        tokenizers(), TokenizerObject{attnprox::Tokenizer::byte_level_bpe(vocab_json, merges_txt)});
  });
}

apx_status apx_tokenizer_wordpiece(const char* vocab_txt, int32_t lowercase, apx_tokenizer** tokenizer) {
  return call([&] {
    need(vocab_txt, "vocab_txt");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = make_handle<apx_tokenizer>(tokenizers(),
                                            TokenizerObject{attnprox::Tokenizer::wordpiece(vocab_txt, lowercase != 0)});
  });
}

void apx_tokenizer_free(apx_tokenizer* tokenizer) {
  if (tokenizer) tokenizers().remove(reinterpret_cast<uintptr_t>(tokenizer));
}

void apx_encoding_free(apx_encoding* encoding) {
  if (!encoding) return;
  if (encoding->tokens) {
    for (size_t i = 0; i < encoding->count; ++i) std::free(encoding->tokens[i]);
  }
  std::free(encoding->ids);
  std::free(encoding->tokens);
  std::free(encoding->offsets);
  std::free(encoding->char_offsets);
  std::free(encoding->special);
  std::free(encoding);
}

apx_encode_params apx_encode_default_params(void) {
  apx_encode_params p;
  p.struct_size = sizeof(apx_encode_params);
  p.add_special_tokens = 1;
  return p;
}

apx_status apx_tokenizer_encode_text(const apx_tokenizer* tokenizer, const char* text, size_t length,
                                     const apx_encode_params* params, apx_encoding** encoding) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    need(text, "text");
    need(encoding, "encoding");
    *encoding = nullptr;
    const apx_encode_params p = params_in(params, apx_encode_default_params(), "params");
    const attnprox::Encoding e = t.encode(text_of(text, length), p.add_special_tokens != 0);
    *encoding = make_encoding(e, e.tokens);
  });
}

apx_status apx_tokenizer_encode(const apx_tokenizer* tokenizer, const char* text, size_t length,
                                int32_t add_special_tokens, apx_encoding** encoding) {
  apx_encode_params params = apx_encode_default_params();
  params.add_special_tokens = add_special_tokens;
  return apx_tokenizer_encode_text(tokenizer, text, length, &params, encoding);
}

apx_status apx_tokenizer_decode(const apx_tokenizer* tokenizer, const int64_t* ids, size_t count,
                                int32_t skip_special_tokens, char** text) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    const std::vector<int64_t> sequence = elements(ids, count, "ids");
    need(text, "text");
    *text = copy_string(t.decode(sequence, skip_special_tokens != 0));
  });
}

apx_status apx_tokenizer_vocab_size(const apx_tokenizer* tokenizer, size_t* size) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    need(size, "size");
    *size = t.vocab_size();
  });
}

apx_status apx_tokenizer_token_to_id(const apx_tokenizer* tokenizer, const char* token, int64_t* id) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    need(token, "token");
    need(id, "id");
    *id = t.token_to_id(token).value_or(-1);
  });
}

apx_status apx_result_encoding(const apx_result* result, apx_encoding** encoding) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(encoding, "encoding");
    *encoding = nullptr;
    attnprox::Encoding e;
    e.ids = r.ids();
    e.offsets = r.offsets();
    e.char_offsets = r.char_offsets();
    *encoding = make_encoding(e, r.tokens());
  });
}

}  // extern "C"
