/*
 * Character tries over a WordPiece vocabulary, stored as one hash table of edges.
 *
 * A node is a number; roots are the first N_ROOTS numbers. The edge (node, code point) leads
 * to a child node; every node may hold a value (a token's index, or -1). Walking the trie
 * one character at a time costs one hash lookup per character and stops as soon as no
 * vocabulary text continues with the characters read so far.
 *
 * The table is sized once, for the number of nodes the caller announces (an upper bound),
 * at a load factor of at most one half, so it never grows.
 */

#ifndef VOCAB_TRIE_H
#define VOCAB_TRIE_H

#include <stdint.h>
#include <string.h>

#include <Python.h>

enum {
    ROOT_START = 0,    /* whole tokens, read forwards: the pieces that may start a word */
    ROOT_CONT = 1,     /* the text after "##" of continuation tokens, read forwards */
    ROOT_CONT_REV = 2, /* the same texts read backwards, from their last character */
    N_ROOTS = 3
};

typedef struct {
    uint32_t node;  /* parent node */
    uint32_t cp;    /* code point read from the parent */
    int32_t child;  /* child node; -1 marks a free slot */
} TrieEdge;

typedef struct {
    TrieEdge *edges;
    size_t mask;        /* number of slots - 1 (a power of two - 1) */
    int shift;          /* 64 - log2(number of slots): keeps a hash's top bits */
    int32_t *values;    /* per node: a token index or -1 */
    size_t n_nodes;
    size_t max_nodes;
} Trie;

static inline size_t trie_slot(const Trie *trie, uint32_t node, uint32_t cp)
{
    uint64_t key = ((uint64_t)node << 21) | cp;  /* code points have 21 bits */
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> trie->shift);
}

/* The child of `node` along `cp`, or -1. */
static inline int32_t trie_child(const Trie *trie, int32_t node, uint32_t cp)
{
    size_t slot = trie_slot(trie, (uint32_t)node, cp);
    for (;;) {
        const TrieEdge *edge = &trie->edges[slot];
        if (edge->child < 0)
            return -1;
        if (edge->node == (uint32_t)node && edge->cp == cp)
            return edge->child;
        slot = (slot + 1) & trie->mask;
    }
}

/* Allocates a trie with room for `max_nodes` nodes besides the roots; 0 on memory error. */
static int trie_init(Trie *trie, size_t max_nodes)
{
    size_t slots = 16, i;
    trie->max_nodes = max_nodes + N_ROOTS;
    trie->shift = 64 - 4;
    while (slots < 2 * trie->max_nodes) {
        slots <<= 1;
        trie->shift--;
    }
    trie->mask = slots - 1;
    trie->n_nodes = N_ROOTS;
    trie->edges = PyMem_Malloc(slots * sizeof(TrieEdge));
    trie->values = PyMem_Malloc(trie->max_nodes * sizeof(int32_t));
    if (trie->edges == NULL || trie->values == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    memset(trie->edges, 0xFF, slots * sizeof(TrieEdge));  /* every child = -1 */
    for (i = 0; i < trie->max_nodes; i++)
        trie->values[i] = -1;
    return 1;
}

static void trie_free(Trie *trie)
{
    PyMem_Free(trie->edges);
    PyMem_Free(trie->values);
    trie->edges = NULL;
    trie->values = NULL;
}

/* The child of `node` along `cp`, created if missing; -1 when the announced room is used up. */
static int32_t trie_child_or_new(Trie *trie, int32_t node, uint32_t cp)
{
    size_t slot = trie_slot(trie, (uint32_t)node, cp);
    TrieEdge *edge;
    for (;;) {
        edge = &trie->edges[slot];
        if (edge->child < 0)
            break;
        if (edge->node == (uint32_t)node && edge->cp == cp)
            return edge->child;
        slot = (slot + 1) & trie->mask;
    }
    if (trie->n_nodes >= trie->max_nodes)
        return -1;
    edge->node = (uint32_t)node;
    edge->cp = cp;
    edge->child = (int32_t)trie->n_nodes++;
    return edge->child;
}

/*
 * Stores `value` under characters [start, stop) of the str `text` below `root`, read
 * forwards, or backwards when `backwards` is set. 0 (with an exception) on failure.
 */
static int trie_insert(Trie *trie, int32_t root, PyObject *text, Py_ssize_t start,
                       Py_ssize_t stop, int backwards, int32_t value)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t i, n = stop - start;
    int32_t node = root;
    for (i = 0; i < n; i++) {
        Py_ssize_t at = backwards ? stop - 1 - i : start + i;
        node = trie_child_or_new(trie, node, PyUnicode_READ(kind, data, at));
        if (node < 0) {
            PyErr_SetString(PyExc_RuntimeError, "vocabulary trie is full (node count too low)");
            return 0;
        }
    }
    trie->values[node] = value;
    return 1;
}

#endif /* VOCAB_TRIE_H */
