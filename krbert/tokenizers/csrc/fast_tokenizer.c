/*
 * _fast_tokenizer: BERT's basic tokenization and WordPiece (greedy, or KR-BERT's
 * bidirectional variant) for cased text, in one pass over each document.
 *
 *   Tokenizer(vocab, unk_token, max_chars, bidirectional, special_ids, bmp_classes, classify)
 *   Tokenizer.tokenize(text) -> list of tokens
 *
 * tokenize gives the tokens tokenization.FullTokenizer gives with do_lower_case=False; the
 * tokens are the vocabulary's own str objects. Python prepares what is not done here
 * (krbert/tokenizers/fast.py): decoding bytes, NFKD for sub-character models and the character
 * classes: `bmp_classes` holds the class of every code point below U+10000 (65,536 bytes)
 * and `classify(code_point)` returns the class of a code point beyond; its answers are
 * remembered. The classes:
 *
 *   CHAR_WORD   part of a word
 *   CHAR_DROP   removed, without separating words (NUL, U+FFFD, control characters)
 *   CHAR_SPACE  separates words
 *   CHAR_ALONE  a word of its own (punctuation, CJK ideographs)
 *
 * Words longer than `max_chars` characters become `unk_token`. Every other word is split by
 * greedy longest-match-first WordPiece; with `bidirectional`, also backwards (longest piece
 * ending the rest of the word), and the split whose sorted vocabulary ids (ids below
 * `special_ids` left out; a failed split counts as the id of `unk_token`, none if it is not
 * in the vocabulary) compare smaller wins, ties going to the backward split. A word with a
 * missing piece becomes `unk_token`.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "vocab_trie.h"

#define API_VERSION 1
#define BMP_SIZE 0x10000
#define ASTRAL_SIZE (0x110000 - BMP_SIZE)

enum { CHAR_WORD = 0, CHAR_DROP = 1, CHAR_SPACE = 2, CHAR_ALONE = 3, N_CLASSES = 4 };

typedef struct {
    PyObject_HEAD
    Trie trie;
    PyObject **tokens;       /* token index -> the vocabulary's str (owned references) */
    long long *ids;          /* token index -> vocabulary id */
    Py_ssize_t n_tokens;
    PyObject *unk;           /* owned */
    long long unk_id;        /* the id of unk in the vocabulary, or -1 */
    long long special_ids;
    Py_ssize_t max_chars;
    int bidirectional;
    PyObject *classify;      /* owned */
    uint8_t bmp[BMP_SIZE];
    uint8_t *astral;         /* class + 1 of code points beyond the BMP (0: not asked yet) */
    /* Buffers for one word, max_chars + 1 entries each. No Python code runs while they
     * are in use, so a tokenize() call cannot interrupt another (see Tokenizer_tokenize). */
    Py_UCS4 *word;
    int32_t *prefix;         /* prefix[k]: token index of the word's first k characters, or -1 */
    int32_t *forward;
    int32_t *backward;
    long long *ranks_a;
    long long *ranks_b;
    /* The document's tokens (borrowed from `tokens`, or unk). */
    PyObject **out;
    Py_ssize_t n_out;
    Py_ssize_t out_capacity;
} Tokenizer;

/* ----------------------------------------------------------------------------------------
 * Character classes. */

/* Asks `classify` for the class of code point cp (beyond the BMP) and stores it; 0 on error. */
static int learn_astral_class(Tokenizer *self, Py_UCS4 cp)
{
    PyObject *answer = PyObject_CallFunction(self->classify, "I", (unsigned int)cp);
    long cls;
    if (answer == NULL)
        return 0;
    cls = PyLong_AsLong(answer);
    Py_DECREF(answer);
    if (cls == -1 && PyErr_Occurred())
        return 0;
    if (cls < 0 || cls >= N_CLASSES) {
        PyErr_Format(PyExc_ValueError, "classify(%u) returned %ld; want 0-%d",
                     (unsigned int)cp, cls, N_CLASSES - 1);
        return 0;
    }
    self->astral[cp - BMP_SIZE] = (uint8_t)(cls + 1);
    return 1;
}

/* Makes sure the class of every character of `text` beyond the BMP is known; 0 on error. */
static int learn_astral_classes(Tokenizer *self, PyObject *text)
{
    const Py_UCS4 *data;
    Py_ssize_t length, i;
    if (PyUnicode_KIND(text) != PyUnicode_4BYTE_KIND)
        return 1;  /* only 4-byte strings hold characters beyond U+FFFF */
    if (self->astral == NULL) {
        self->astral = PyMem_Calloc(ASTRAL_SIZE, 1);
        if (self->astral == NULL) {
            PyErr_NoMemory();
            return 0;
        }
    }
    data = PyUnicode_4BYTE_DATA(text);
    length = PyUnicode_GET_LENGTH(text);
    for (i = 0; i < length; i++) {
        if (data[i] >= BMP_SIZE && !self->astral[data[i] - BMP_SIZE] &&
                !learn_astral_class(self, data[i]))
            return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------------------------------
 * WordPiece on the word in self->word (n characters, 0 < n <= max_chars). The functions
 * write token indices and return how many, or -1 when a piece is missing. */

/* Greedy longest-match-first pieces from the word's start. */
static Py_ssize_t forward_pieces(const Tokenizer *self, Py_ssize_t n, int32_t *pieces)
{
    const Trie *trie = &self->trie;
    const Py_UCS4 *word = self->word;
    Py_ssize_t start = 0, count = 0, i, best_end;
    int32_t root = ROOT_START, node, best;
    while (start < n) {
        node = root;
        best = -1;
        best_end = start;
        for (i = start; i < n; i++) {
            node = trie_child(trie, node, word[i]);
            if (node < 0)
                break;
            if (trie->values[node] >= 0) {
                best = trie->values[node];
                best_end = i + 1;
            }
        }
        if (best < 0)
            return -1;
        pieces[count++] = best;
        start = best_end;
        root = ROOT_CONT;
    }
    return count;
}

/* self->prefix[k] for k = 1..n: the token spelled by the word's first k characters, or -1. */
static void find_prefix_tokens(Tokenizer *self, Py_ssize_t n)
{
    int32_t node = ROOT_START;
    Py_ssize_t k;
    for (k = 1; k <= n; k++) {
        node = node < 0 ? -1 : trie_child(&self->trie, node, self->word[k - 1]);
        self->prefix[k] = node < 0 ? -1 : self->trie.values[node];
    }
}

/* Greedy longest-match pieces from the word's end (needs find_prefix_tokens). */
static Py_ssize_t backward_pieces(const Tokenizer *self, Py_ssize_t n, int32_t *pieces)
{
    const Trie *trie = &self->trie;
    const Py_UCS4 *word = self->word;
    Py_ssize_t end = n, count = 0, start, best_start, i;
    int32_t node, best, swap;
    while (end > 0) {
        if (self->prefix[end] >= 0) {  /* the rest of the word is one starting piece */
            pieces[count++] = self->prefix[end];
            break;
        }
        node = ROOT_CONT_REV;
        best = -1;
        best_start = end;
        for (start = end - 1; start >= 1; start--) {
            node = trie_child(trie, node, word[start]);
            if (node < 0)
                break;
            if (trie->values[node] >= 0) {
                best = trie->values[node];
                best_start = start;
            }
        }
        if (best < 0)
            return -1;
        pieces[count++] = best;
        end = best_start;
    }
    for (i = 0; i < count / 2; i++) {
        swap = pieces[i];
        pieces[i] = pieces[count - 1 - i];
        pieces[count - 1 - i] = swap;
    }
    return count;
}

/* The sorted ids of a split, special ids left out; count < 0 (a failed split) is unk's id. */
static Py_ssize_t sorted_ranks(const Tokenizer *self, const int32_t *pieces, Py_ssize_t count,
                               long long *ranks)
{
    Py_ssize_t n = 0, i, j;
    long long id;
    if (count < 0) {
        if (self->unk_id >= self->special_ids)
            ranks[n++] = self->unk_id;
        return n;
    }
    for (i = 0; i < count; i++) {
        id = self->ids[pieces[i]];
        if (id < self->special_ids)
            continue;
        for (j = n; j > 0 && ranks[j - 1] > id; j--)
            ranks[j] = ranks[j - 1];
        ranks[j] = id;
        n++;
    }
    return n;
}

/* Whether the forward split's ranks compare smaller than the backward split's (as lists). */
static int forward_ranks_smaller(Tokenizer *self, Py_ssize_t n_forward, Py_ssize_t n_backward)
{
    Py_ssize_t na = sorted_ranks(self, self->forward, n_forward, self->ranks_a);
    Py_ssize_t nb = sorted_ranks(self, self->backward, n_backward, self->ranks_b);
    Py_ssize_t i;
    for (i = 0; i < na && i < nb; i++) {
        if (self->ranks_a[i] != self->ranks_b[i])
            return self->ranks_a[i] < self->ranks_b[i];
    }
    return na < nb;
}

/* KR-BERT's bidirectional choice; *chosen points to the winning pieces. */
static Py_ssize_t bidirectional_pieces(Tokenizer *self, Py_ssize_t n, const int32_t **chosen)
{
    Py_ssize_t n_forward, n_backward;
    find_prefix_tokens(self, n);
    *chosen = self->forward;
    if (self->prefix[n] >= 0) {  /* both directions take the whole word */
        self->forward[0] = self->prefix[n];
        return 1;
    }
    n_forward = forward_pieces(self, n, self->forward);
    n_backward = backward_pieces(self, n, self->backward);
    if (n_forward == n_backward && (n_forward < 0 || memcmp(
            self->forward, self->backward, (size_t)n_forward * sizeof(int32_t)) == 0))
        return n_forward;
    if (forward_ranks_smaller(self, n_forward, n_backward))
        return n_forward;
    *chosen = self->backward;
    return n_backward;
}

/* ----------------------------------------------------------------------------------------
 * Documents. */

/* Makes room for `more` output tokens; 0 on memory error. */
static int reserve_out(Tokenizer *self, Py_ssize_t more)
{
    Py_ssize_t capacity = self->out_capacity;
    PyObject **grown;
    if (self->n_out + more <= capacity)
        return 1;
    while (capacity < self->n_out + more)
        capacity = capacity ? 2 * capacity : 256;
    grown = PyMem_Realloc(self->out, (size_t)capacity * sizeof(PyObject *));
    if (grown == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    self->out = grown;
    self->out_capacity = capacity;
    return 1;
}

/* Appends the pieces of the word in self->word (n characters); 0 on error. */
static int emit_word(Tokenizer *self, Py_ssize_t n)
{
    const int32_t *pieces = self->forward;
    Py_ssize_t count = -1, i;
    if (n <= self->max_chars) {
        if (self->bidirectional)
            count = bidirectional_pieces(self, n, &pieces);
        else
            count = forward_pieces(self, n, self->forward);
    }
    if (!reserve_out(self, count < 0 ? 1 : count))
        return 0;
    if (count < 0) {
        self->out[self->n_out++] = self->unk;
        return 1;
    }
    for (i = 0; i < count; i++)
        self->out[self->n_out++] = self->tokens[pieces[i]];
    return 1;
}

/* Splits `text` into words and appends their pieces to self->out; 0 on error. The classes
 * of its characters beyond the BMP must be known (learn_astral_classes). */
static int tokenize_into_out(Tokenizer *self, PyObject *text)
{
    int kind = PyUnicode_KIND(text), cls;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text), i, n = 0;
    Py_UCS4 cp;
    for (i = 0; i < length; i++) {
        cp = PyUnicode_READ(kind, data, i);
        cls = cp < BMP_SIZE ? self->bmp[cp] : self->astral[cp - BMP_SIZE] - 1;
        if (cls == CHAR_WORD) {
            if (n < self->max_chars)  /* longer words become unk: their text is not needed */
                self->word[n] = cp;
            n++;
            continue;
        }
        if (cls == CHAR_DROP)
            continue;
        if (n > 0 && !emit_word(self, n))
            return 0;
        n = 0;
        if (cls == CHAR_ALONE) {
            self->word[0] = cp;  /* the buffer has max_chars + 1 entries */
            if (!emit_word(self, 1))
                return 0;
        }
    }
    return n == 0 || emit_word(self, n);
}

/*
 * tokenize(text). Python code runs only before the splitting (classify, for characters
 * beyond the BMP not seen before) and after it (PyList_New may run the garbage collector),
 * never while the word buffers are in use; the output buffer is detached from the tokenizer
 * while the list is made, so even a call from a finalizer cannot disturb this one.
 */
static PyObject *Tokenizer_tokenize(Tokenizer *self, PyObject *text)
{
    PyObject *list, **out;
    Py_ssize_t i, n_out, capacity;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "tokenize() takes a str, not %.100s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    if (!learn_astral_classes(self, text))
        return NULL;
    self->n_out = 0;
    if (!tokenize_into_out(self, text))
        return NULL;
    out = self->out;
    n_out = self->n_out;
    capacity = self->out_capacity;
    self->out = NULL;
    self->out_capacity = 0;
    list = PyList_New(n_out);
    if (list != NULL) {
        for (i = 0; i < n_out; i++) {
            Py_INCREF(out[i]);
            PyList_SET_ITEM(list, i, out[i]);
        }
    }
    if (self->out == NULL) {  /* give the buffer back, unless another call made a new one */
        self->out = out;
        self->out_capacity = capacity;
    } else {
        PyMem_Free(out);
    }
    return list;
}

/* ----------------------------------------------------------------------------------------
 * Construction. */

/* Upper bound of the trie nodes `vocab` needs; -1 (with an exception) on a bad entry. */
static Py_ssize_t count_trie_nodes(PyObject *vocab)
{
    Py_ssize_t pos = 0, nodes = 0, length;
    PyObject *token, *id;
    while (PyDict_Next(vocab, &pos, &token, &id)) {
        if (!PyUnicode_Check(token) || !PyLong_Check(id)) {
            PyErr_SetString(PyExc_TypeError, "vocab must map str tokens to int ids");
            return -1;
        }
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(token) < 0)
            return -1;
#endif
        length = PyUnicode_GET_LENGTH(token);
        nodes += length;
        if (length > 2 && PyUnicode_READ_CHAR(token, 0) == '#' &&
                PyUnicode_READ_CHAR(token, 1) == '#')
            nodes += 2 * (length - 2);
    }
    return nodes;
}

/* Fills tokens, ids and the three tries from `vocab`; 0 on error. */
static int load_vocab(Tokenizer *self, PyObject *vocab)
{
    Py_ssize_t pos = 0, length, nodes = count_trie_nodes(vocab);
    PyObject *token, *id;
    int32_t index;
    if (nodes < 0 || !trie_init(&self->trie, (size_t)nodes))
        return 0;
    self->tokens = PyMem_Calloc((size_t)PyDict_Size(vocab) + 1, sizeof(PyObject *));
    self->ids = PyMem_Calloc((size_t)PyDict_Size(vocab) + 1, sizeof(long long));
    if (self->tokens == NULL || self->ids == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    while (PyDict_Next(vocab, &pos, &token, &id)) {
        index = (int32_t)self->n_tokens;
        self->ids[index] = PyLong_AsLongLong(id);
        if (self->ids[index] == -1 && PyErr_Occurred())
            return 0;
        Py_INCREF(token);
        self->tokens[self->n_tokens++] = token;
        if (PyUnicode_Compare(token, self->unk) == 0) {
            Py_INCREF(token);  /* output the vocabulary's own unk string too */
            Py_SETREF(self->unk, token);
        }
        length = PyUnicode_GET_LENGTH(token);
        if (length > 0 && !trie_insert(&self->trie, ROOT_START, token, 0, length, 0, index))
            return 0;
        if (length > 2 && PyUnicode_READ_CHAR(token, 0) == '#' &&
                PyUnicode_READ_CHAR(token, 1) == '#' &&
                !(trie_insert(&self->trie, ROOT_CONT, token, 2, length, 0, index) &&
                  trie_insert(&self->trie, ROOT_CONT_REV, token, 2, length, 1, index)))
            return 0;
    }
    return 1;
}

/* Allocates the per-word buffers (max_chars + 1 entries each); 0 on memory error. */
static int allocate_buffers(Tokenizer *self)
{
    size_t n = (size_t)self->max_chars + 1;
    self->word = PyMem_Malloc(n * sizeof(Py_UCS4));
    self->prefix = PyMem_Malloc(n * sizeof(int32_t));
    self->forward = PyMem_Malloc(n * sizeof(int32_t));
    self->backward = PyMem_Malloc(n * sizeof(int32_t));
    self->ranks_a = PyMem_Malloc(n * sizeof(long long));
    self->ranks_b = PyMem_Malloc(n * sizeof(long long));
    if (!self->word || !self->prefix || !self->forward || !self->backward ||
            !self->ranks_a || !self->ranks_b) {
        PyErr_NoMemory();
        return 0;
    }
    return 1;
}

/* Copies the BMP class table; 0 (with ValueError) unless it has 65,536 valid classes. */
static int load_classes(Tokenizer *self, const Py_buffer *classes)
{
    Py_ssize_t i;
    const uint8_t *bytes = classes->buf;
    if (classes->len != BMP_SIZE) {
        PyErr_Format(PyExc_ValueError, "bmp_classes has %zd bytes; want %d",
                     classes->len, BMP_SIZE);
        return 0;
    }
    for (i = 0; i < BMP_SIZE; i++) {
        if (bytes[i] >= N_CLASSES) {
            PyErr_Format(PyExc_ValueError, "bmp_classes[%zd] is %d; want 0-%d",
                         i, bytes[i], N_CLASSES - 1);
            return 0;
        }
    }
    memcpy(self->bmp, bytes, BMP_SIZE);
    return 1;
}

static void Tokenizer_dealloc(Tokenizer *self)
{
    Py_ssize_t i;
    for (i = 0; i < self->n_tokens; i++)
        Py_DECREF(self->tokens[i]);
    PyMem_Free(self->tokens);
    PyMem_Free(self->ids);
    trie_free(&self->trie);
    Py_XDECREF(self->unk);
    Py_XDECREF(self->classify);
    PyMem_Free(self->astral);
    PyMem_Free(self->word);
    PyMem_Free(self->prefix);
    PyMem_Free(self->forward);
    PyMem_Free(self->backward);
    PyMem_Free(self->ranks_a);
    PyMem_Free(self->ranks_b);
    PyMem_Free(self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Tokenizer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"vocab", "unk_token", "max_chars", "bidirectional",
                               "special_ids", "bmp_classes", "classify", NULL};
    PyObject *vocab, *unk, *classify, *unk_id;
    Py_ssize_t max_chars, special_ids;
    int bidirectional, ok;
    Py_buffer classes;
    Tokenizer *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!Unpny*O:Tokenizer", keywords,
                                     &PyDict_Type, &vocab, &unk, &max_chars, &bidirectional,
                                     &special_ids, &classes, &classify))
        return NULL;
    self = (Tokenizer *)type->tp_alloc(type, 0);  /* zero-filled */
    if (self == NULL) {
        PyBuffer_Release(&classes);
        return NULL;
    }
    Py_INCREF(unk);
    self->unk = unk;
    Py_INCREF(classify);
    self->classify = classify;
    self->max_chars = max_chars;
    self->bidirectional = bidirectional;
    self->special_ids = special_ids;
    unk_id = PyDict_GetItemWithError(vocab, unk);
    self->unk_id = unk_id == NULL ? -1 : PyLong_AsLongLong(unk_id);
    ok = !PyErr_Occurred() && load_classes(self, &classes);
    PyBuffer_Release(&classes);
    if (ok && max_chars < 0) {
        PyErr_SetString(PyExc_ValueError, "max_chars must be >= 0");
        ok = 0;
    }
    if (ok && !PyCallable_Check(classify)) {
        PyErr_SetString(PyExc_TypeError, "classify must be callable");
        ok = 0;
    }
    if (!ok || !allocate_buffers(self) || !load_vocab(self, vocab)) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyMethodDef Tokenizer_methods[] = {
    {"tokenize", (PyCFunction)Tokenizer_tokenize, METH_O,
     "tokenize(text) -> list of the vocabulary's tokens for the str `text`."},
    {NULL, NULL, 0, NULL}
};

static PyTypeObject TokenizerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    "_fast_tokenizer.Tokenizer",      /* tp_name */
    sizeof(Tokenizer),                /* tp_basicsize */
};

static struct PyModuleDef fast_tokenizer_module = {
    PyModuleDef_HEAD_INIT, "_fast_tokenizer",
    "BERT basic tokenization and WordPiece for cased text, in C.", -1, NULL,
};

PyMODINIT_FUNC PyInit__fast_tokenizer(void)
{
    PyObject *module;
    TokenizerType.tp_dealloc = (destructor)Tokenizer_dealloc;
    TokenizerType.tp_flags = Py_TPFLAGS_DEFAULT;
    TokenizerType.tp_doc = "Tokenizer(vocab, unk_token, max_chars, bidirectional, special_ids, "
                           "bmp_classes, classify): see the module source.";
    TokenizerType.tp_methods = Tokenizer_methods;
    TokenizerType.tp_new = Tokenizer_new;
    if (PyType_Ready(&TokenizerType) < 0)
        return NULL;
    module = PyModule_Create(&fast_tokenizer_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&TokenizerType);
    if (PyModule_AddObject(module, "Tokenizer", (PyObject *)&TokenizerType) < 0 ||
            PyModule_AddIntConstant(module, "API_VERSION", API_VERSION) < 0 ||
            PyModule_AddIntConstant(module, "CHAR_WORD", CHAR_WORD) < 0 ||
            PyModule_AddIntConstant(module, "CHAR_DROP", CHAR_DROP) < 0 ||
            PyModule_AddIntConstant(module, "CHAR_SPACE", CHAR_SPACE) < 0 ||
            PyModule_AddIntConstant(module, "CHAR_ALONE", CHAR_ALONE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
