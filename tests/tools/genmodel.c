/*
 * genmodel - write a synthetic HuggingFace-style model directory with
 * realistic weight statistics, for tests, the demo and the benchmark.
 *
 *   genmodel OUTDIR [--mb N] [--hidden H] [--vocab V] [--dtype bf16|f16|f32] [--shards K]
 *                   [--seed S] [--special] [--ternary]
 *
 * Weights: per-row scale lognormal (sigma 0.35), Gaussian bulk with 1% of
 * values drawn 3-8x wider (heavy tails), three outlier columns per matrix
 * 10x larger: the statistics that make INT8 rows differ in scale.
 * --special adds the awkward cases: NaN payloads, +-Inf, -0.0, subnormals,
 * an all-zero row, a 0-d and an empty tensor, an odd-sized I8 tensor that
 * leaves every later offset unaligned, and __metadata__.
 * --ternary makes every Linear weight QMoE-style: per row {-a, 0, +a} with
 * about 88% zeros (a low-entropy model; embeddings and norms stay dense).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "halfcast.h"

enum { BF16, F16, F32 };
static int dtype = BF16, esz = 2, ternary = 0;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
	rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
	return rng;
}
static double uni(void) { return ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
/* Only +, -, *, / and sqrt (all correctly rounded in IEEE 754): the same
 * seed gives the same bytes on every platform, which the golden container
 * test relies on.  Irwin-Hall(4) scaled to unit variance. */
static double gauss(void)
{
	return (uni() + uni() + uni() + uni() - 2.0) * 1.7320508075688772;
}

/* 2^(k/8) for the per-row scale spread (a discretised lognormal) */
static double pow2_8(int k)
{
	static const double F[8] = { 1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096,
				     1.4142135623730951, 1.5422108254079407, 1.681792830507429, 1.8340080864093424 };
	double v = F[((k % 8) + 8) % 8];
	for (int e = (k >= 0 ? k : k - 7) / 8; e > 0; e--) v *= 2;
	for (int e = (k >= 0 ? k : k - 7) / 8; e < 0; e++) v /= 2;
	return v;
}

static void put(uint8_t *p, float v)
{
	if (dtype == F32) memcpy(p, &v, 4);
	else {
		uint16_t h = dtype == BF16 ? f32_to_bf16(v) : f32_to_f16(v);
		p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8);
	}
}

typedef struct { char name[128]; char dtype[8]; int ndim; uint64_t shape[2]; uint8_t *data; uint64_t bytes; int shard; } tensor;
static tensor T[4096];
static int nt;

static tensor *add(const char *name, const char *dt, int ndim, uint64_t a, uint64_t b, uint64_t bytes)
{
	tensor *t = &T[nt++];
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->dtype, sizeof(t->dtype), "%s", dt);
	t->ndim = ndim; t->shape[0] = a; t->shape[1] = b; t->bytes = bytes;
	t->data = malloc(bytes ? bytes : 1);
	return t;
}

static const char *DT(void) { return dtype == BF16 ? "BF16" : dtype == F16 ? "F16" : "F32"; }

static void matrix(const char *name, uint64_t rows, uint64_t cols, double base, int tern)
{
	tensor *t = add(name, DT(), 2, rows, cols, rows * cols * esz);
	uint64_t oc[3] = { next() % cols, next() % cols, next() % cols };
	for (uint64_t r = 0; r < rows; r++) {
		double g = gauss() * 2.8; /* sigma 0.35 in ln units = 0.5 in log2 = 4 eighths */
		double sc = base * pow2_8((int)(g < 0 ? g - 0.5 : g + 0.5));
		for (uint64_t c = 0; c < cols; c++) {
			if (tern) {
				double u = uni();
				put(t->data + (r * cols + c) * esz, u < 0.88 ? 0.0f : (float)(u < 0.94 ? sc : -sc));
				continue;
			}
			double w = gauss() * sc;
			if (uni() < 0.01) w *= 3 + 5 * uni();
			if (c == oc[0] || c == oc[1] || c == oc[2]) w *= 10;
			put(t->data + (r * cols + c) * esz, (float)w);
		}
	}
}

static void vector(const char *name, uint64_t n, double mean, double sd)
{
	tensor *t = add(name, DT(), 1, n, 0, n * esz);
	for (uint64_t i = 0; i < n; i++)
		put(t->data + i * esz, (float)(mean + sd * gauss()));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) { perror(path); exit(1); }
	fputs(text, f);
	fclose(f);
}

static void write_shard(const char *dir, const char *fname, int shard, int special)
{
	char path[4096], *hdr = malloc(1 << 20);
	size_t hl = 0;
	uint64_t off = 0;
	hl += (size_t)sprintf(hdr + hl, "{");
	if (special)
		hl += (size_t)sprintf(hdr + hl, "\"__metadata__\":{\"format\":\"pt\",\"note\":\"qstore test\"},");
	int first = 1;
	for (int i = 0; i < nt; i++) {
		tensor *t = &T[i];
		if (t->shard != shard) continue;
		hl += (size_t)sprintf(hdr + hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",", t->name, t->dtype);
		if (t->ndim == 1) hl += (size_t)sprintf(hdr + hl, "%llu", (unsigned long long)t->shape[0]);
		if (t->ndim == 2) hl += (size_t)sprintf(hdr + hl, "%llu,%llu", (unsigned long long)t->shape[0], (unsigned long long)t->shape[1]);
		hl += (size_t)sprintf(hdr + hl, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
				      (unsigned long long)(off + t->bytes));
		off += t->bytes;
		first = 0;
	}
	hl += (size_t)sprintf(hdr + hl, "}");
	while (hl % 8) hdr[hl++] = ' ';
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	FILE *f = fopen(path, "wb");
	if (!f) { perror(path); exit(1); }
	uint64_t n = hl;
	fwrite(&n, 8, 1, f);
	fwrite(hdr, 1, hl, f);
	for (int i = 0; i < nt; i++)
		if (T[i].shard == shard) fwrite(T[i].data, 1, T[i].bytes, f);
	fclose(f);
	free(hdr);
}

/* The tokenizer the golden container was made with: a vocabulary only (its
 * bytes are part of the golden source, so it stays as it is). */
static void write_placeholder_tokenizer(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	char *tok = malloc(200000);
	size_t tl = (size_t)sprintf(tok, "{\"version\":\"1.0\",\"model\":{\"type\":\"WordLevel\",\"vocab\":{");
	for (int i = 0; i < 4000; i++) tl += (size_t)sprintf(tok + tl, "%s\"tok%d\":%d", i ? "," : "", i, i);
	sprintf(tok + tl, "}}}\n");
	write_file(path, tok);
	free(tok);
}

/* --words: a tokenizer a transformers pipeline runs with: lower-cased
 * English words split on whitespace and punctuation (WordLevel), <unk>,
 * <s> and </s>, as many entries as the model's vocabulary, and a
 * tokenizer_config.json naming the fast tokenizer and its special tokens. */
static void write_word_tokenizer(const char *dir, uint64_t V)
{
	static const char *const W[] = {
		"the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as",
		"with", "his", "they", "i", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but",
		"not", "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which",
		"she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these",
		"so", "some", "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write",
		"go", "see", "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call",
		"who", "oil", "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part",
		"model", "host", "weights", "file", "precision", "fast", "small", "large", "cat", "sat", "mat", ".", ",",
		"!", "?", "'", "-", ":", ";" };
	size_t nw = sizeof(W) / sizeof(W[0]), cap = 64 + 24 * (size_t)(V + nw);
	char path[4096], *tok = malloc(cap + 4096);
	size_t tl = (size_t)sprintf(tok, "{\"version\":\"1.0\",\"added_tokens\":["
				    "{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,"
				    "\"rstrip\":false,\"normalized\":false,\"special\":true},"
				    "{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,"
				    "\"rstrip\":false,\"normalized\":false,\"special\":true},"
				    "{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,"
				    "\"rstrip\":false,\"normalized\":false,\"special\":true}],"
				    "\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
				    "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
				    "\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"<unk>\",\"vocab\":{"
				    "\"<unk>\":0,\"<s>\":1,\"</s>\":2");
	for (uint64_t i = 3; i < V; i++) {
		if (i - 3 < nw)
			tl += (size_t)sprintf(tok + tl, ",\"%s\":%llu", W[i - 3], (unsigned long long)i);
		else
			tl += (size_t)sprintf(tok + tl, ",\"w%llu\":%llu", (unsigned long long)i, (unsigned long long)i);
	}
	sprintf(tok + tl, "}}}\n");
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	write_file(path, tok);
	free(tok);
	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	write_file(path, "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"unk_token\": \"<unk>\", "
		   "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"model_max_length\": 2048}\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: genmodel OUTDIR [--mb N] [--hidden H] [--vocab V] [--dtype bf16|f16|f32] [--shards K] [--seed S] [--special] [--ternary] [--words]\n");
		return 2;
	}
	const char *dir = argv[1];
	double mb = 8;
	int hidden = 256, shards = 1, special = 0, words = 0;
	uint64_t vocab = 1000;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atof(argv[++i]);
		else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--shards") && i + 1 < argc) shards = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = strtoull(argv[++i], 0, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng ^= strtoull(argv[++i], 0, 10) * 0x2545F4914F6CDD1Dull;
		else if (!strcmp(argv[i], "--special")) special = 1;
		else if (!strcmp(argv[i], "--ternary")) ternary = 1;
		else if (!strcmp(argv[i], "--words")) words = 1;
		else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
			const char *d = argv[++i];
			dtype = !strcmp(d, "f16") ? F16 : !strcmp(d, "f32") ? F32 : BF16;
		} else { fprintf(stderr, "genmodel: bad argument %s\n", argv[i]); return 2; }
	}
	esz = dtype == F32 ? 4 : 2;
	mkdir(dir, 0755);
	uint64_t H = (uint64_t)hidden, I = H * 11 / 4, V = vocab;
	double per_layer = (4.0 * H * H + 3.0 * H * I) * esz;
	int layers = (int)((mb * 1e6 - 2.0 * V * H * esz) / per_layer + 0.5);
	if (layers < 1) layers = 1;
	double base = 1.0 / __builtin_sqrt((double)H);
	char name[128];
	if (special) {
		/* an odd-sized int tensor first: every later offset becomes unaligned */
		tensor *t = add("model.odd_int8_buffer", "I8", 1, 3, 0, 3);
		t->data[0] = 1; t->data[1] = 0xff; t->data[2] = 0x80;
		add("model.scalar", DT(), 0, 0, 0, (uint64_t)esz);
		put(T[nt - 1].data, 0.5f);
		add("model.empty.weight", DT(), 2, 0, 4, 0);
	}
	matrix("model.embed_tokens.weight", V, H, 0.02, 0);
	for (int l = 0; l < layers; l++) {
		static const char *attn[] = { "q_proj", "k_proj", "v_proj", "o_proj" };
		for (int k = 0; k < 4; k++) {
			snprintf(name, sizeof(name), "model.layers.%d.self_attn.%s.weight", l, attn[k]);
			matrix(name, H, H, base, ternary);
		}
		snprintf(name, sizeof(name), "model.layers.%d.mlp.gate_proj.weight", l); matrix(name, I, H, base, ternary);
		snprintf(name, sizeof(name), "model.layers.%d.mlp.up_proj.weight", l); matrix(name, I, H, base, ternary);
		snprintf(name, sizeof(name), "model.layers.%d.mlp.down_proj.weight", l); matrix(name, H, I, base, ternary);
		snprintf(name, sizeof(name), "model.layers.%d.input_layernorm.weight", l); vector(name, H, 1.0, 0.05);
		snprintf(name, sizeof(name), "model.layers.%d.post_attention_layernorm.weight", l); vector(name, H, 1.0, 0.05);
	}
	vector("model.norm.weight", H, 1.0, 0.05);
	matrix("lm_head.weight", V, H, 0.02, 0);
	if (special && dtype != F32) {
		/* awkward values inside a quantised weight and a float vector */
		tensor *w = &T[3 + 1 + 0]; /* layer 0 q_proj */
		uint16_t odd[] = { 0x7fc1, 0xffa5, 0x7f80, 0xff80 }; /* NaN payloads, +-Inf */
		tensor *v = add("model.special_values", DT(), 1, 8, 0, 8 * (uint64_t)esz);
		for (int i = 0; i < 4; i++) { v->data[2 * i] = (uint8_t)odd[i]; v->data[2 * i + 1] = (uint8_t)(odd[i] >> 8); }
		uint16_t ok[] = { 0x8000, 0x0001, 0x8003, 0x0000 };  /* -0, subnormals, +0 */
		for (int i = 0; i < 4; i++) { v->data[8 + 2 * i] = (uint8_t)ok[i]; v->data[9 + 2 * i] = (uint8_t)(ok[i] >> 8); }
		for (uint64_t c = 0; c < w->shape[1]; c++) { w->data[2 * c] = 0; w->data[2 * c + 1] = 0; } /* all-zero row 0 */
		w->data[2 * w->shape[1] + 1] = 0x80; w->data[2 * w->shape[1]] = 0;   /* -0.0 */
		w->data[4 * w->shape[1]] = 0x01; w->data[4 * w->shape[1] + 1] = 0;   /* a subnormal */
		/* a NaN inside one weight: that tensor must stay float */
		tensor *x = &T[3 + 1 + 1]; /* layer 0 k_proj */
		x->data[10] = 0xc1; x->data[11] = 0x7f;
	}
	int per = (nt + shards - 1) / shards;
	for (int i = 0; i < nt; i++) T[i].shard = shards > 1 ? i / per : 0;
	char fname[256], path[4096];
	if (shards == 1) {
		write_shard(dir, "model.safetensors", 0, special);
	} else {
		char *idx = malloc(1 << 22);
		size_t il = 0;
		uint64_t total = 0;
		for (int i = 0; i < nt; i++) total += T[i].bytes;
		il += (size_t)sprintf(idx + il, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n", (unsigned long long)total);
		for (int i = 0; i < nt; i++)
			il += (size_t)sprintf(idx + il, "    \"%s\": \"model-%05d-of-%05d.safetensors\"%s\n", T[i].name, T[i].shard + 1,
					      shards, i + 1 < nt ? "," : "");
		il += (size_t)sprintf(idx + il, "  }\n}\n");
		snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
		write_file(path, idx);
		free(idx);
		for (int s = 0; s < shards; s++) {
			snprintf(fname, sizeof(fname), "model-%05d-of-%05d.safetensors", s + 1, shards);
			write_shard(dir, fname, s, special);
		}
	}
	snprintf(path, sizeof(path), "%s/config.json", dir);
	char cfg[2048];
	snprintf(cfg, sizeof(cfg),
		 "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %llu,\n"
		 "  \"intermediate_size\": %llu,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
		 "  \"num_key_value_heads\": %d,\n  \"vocab_size\": %llu,\n  \"rms_norm_eps\": 1e-05,\n"
		 "  \"tie_word_embeddings\": false,\n  \"torch_dtype\": \"%s\"\n}\n",
		 (unsigned long long)H, (unsigned long long)I, layers, (int)(H / 64 ? H / 64 : 1), (int)(H / 64 ? H / 64 : 1),
		 (unsigned long long)V, dtype == BF16 ? "bfloat16" : dtype == F16 ? "float16" : "float32");
	write_file(path, cfg);
	if (words)
		write_word_tokenizer(dir, V);
	else
		write_placeholder_tokenizer(dir);
	snprintf(path, sizeof(path), "%s/1_Pooling", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/1_Pooling/config.json", dir);
	write_file(path, "{\"pooling_mode_mean_tokens\": true}\n");
	fprintf(stderr, "genmodel: %s: %d layers, hidden %llu, %s, %d shard(s)\n", dir, layers, (unsigned long long)H, DT(), shards);
	return 0;
}
