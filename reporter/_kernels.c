/* The inner loops of a frame, in C: reporter._kernels.
 *
 * 1. The t-SNE gradient of a 2-D embedding (reporter.embed). Below a few thousand points the
 *    exact repulsion (every pair, O(N^2)) is cheaper than openTSNE's Barnes-Hut or FFT
 *    approximations and has no approximation error. The attraction runs over the sparse
 *    affinities P (CSR). The signs and normalisation are openTSNE's (kl_divergence_bh with
 *    theta = 0, degrees of freedom 1): with w_ij = 1 / (1 + |y_i - y_j|^2), Z = sum_{i != j} w_ij,
 *
 *        gradient_i = sum_j p_ij w_ij (y_i - y_j)  -  sum_j w_ij^2 (y_i - y_j) / Z
 *
 *    And the step of openTSNE's gradient descent that follows each gradient.
 *
 * 2. The selection step of the exact nearest-neighbour search (reporter.neighbours): given a
 *    block of float32 squared distances and a radius per row, keep the points inside it and rank
 *    them by their direct float64 distance, ties by index; one pass over the block instead of
 *    NumPy's several.
 *
 * 3. The ranks trustworthiness needs beyond the known neighbours (reporter.quality): how many
 *    points are nearer, counted without copying rows of the distance matrix.
 *
 * The loops are written so that the compiler vectorises them (-fopenmp-simd; no fast-math, no
 * fused multiply-adds: the same results on every run, and the same rounding as NumPy's where a
 * result must match it). Arrays come in through the buffer protocol (NumPy arrays, C-contiguous),
 * so building this needs no NumPy headers. The Python callers check shapes and types first; this
 * file checks them again and raises ValueError rather than read out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


/* A C-contiguous buffer of items of one of the struct ``formats`` (one character each). */
static int
take(PyObject *obj, Py_buffer *view, const char *formats, Py_ssize_t itemsize, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        view->obj = NULL; /* nothing to release */
        return -1;
    }
    const char *format = view->format;
    if (view->itemsize != itemsize || format == NULL || format[0] == '\0' || format[1] != '\0'
        || strchr(formats, format[0]) == NULL) {
        PyErr_Format(PyExc_ValueError, "%s: expected items of format '%s', got '%s'",
                     name, formats, format ? format : "?");
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

/* The arguments of one call: count buffers described by one line each. */
typedef struct {
    const char *name;
    const char *formats;
    Py_ssize_t itemsize;
    int writable;
} Argument;

static void
release_all(Py_buffer *views, int count)
{
    for (int a = 0; a < count; a++)
        if (views[a].obj != NULL)
            PyBuffer_Release(&views[a]);
}

/* Releases the call's buffers; None, or NULL when it failed (the exception is set). */
static PyObject *
finish(Py_buffer *views, int count, int ok)
{
    release_all(views, count);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* take() for each argument; on failure releases what it took and returns -1. */
static int
take_all(PyObject **objs, Py_buffer *views, const Argument *arguments, int count)
{
    for (int a = 0; a < count; a++)
        if (take(objs[a], &views[a], arguments[a].formats, arguments[a].itemsize, arguments[a].writable,
                 arguments[a].name) < 0) {
            release_all(views, count);
            return -1;
        }
    return 0;
}

/* A gradient's arguments: the embedding, the affinities P in CSR form and the gradient written. */
enum { EMBEDDING, INDPTR, INDICES, DATA, GRADIENT, PROBLEM_BUFFERS };

static const Argument problem_arguments[PROBLEM_BUFFERS] = {
    {"embedding", "d", sizeof(double), 0}, /* (N, 2) float64 */
    {"indptr", "i", sizeof(int), 0},       /* (N + 1,) int32 */
    {"indices", "i", sizeof(int), 0},      /* (nnz,) int32 */
    {"data", "d", sizeof(double), 0},      /* (nnz,) float64 */
    {"gradient", "d", sizeof(double), 1},  /* (N, 2) float64, written */
};

typedef struct {
    Py_buffer v[PROBLEM_BUFFERS];
    Py_ssize_t n;
} Problem;

/* Fills p from (embedding, indptr, indices, data, gradient) and checks that the CSR structure
 * stays inside the embedding; with_error is the keyword-only flag. */
static int
parse(PyObject *args, PyObject *kwargs, Problem *p, int *with_error)
{
    static char *keywords[] = {"embedding", "indptr", "indices", "data", "gradient", "with_error", NULL};
    PyObject *objs[PROBLEM_BUFFERS];
    memset(p, 0, sizeof(*p));
    *with_error = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO|$p", keywords, &objs[EMBEDDING], &objs[INDPTR],
                                     &objs[INDICES], &objs[DATA], &objs[GRADIENT], with_error))
        return -1;
    if (take_all(objs, p->v, problem_arguments, PROBLEM_BUFFERS) < 0)
        return -1;
    Py_ssize_t values = p->v[EMBEDDING].len / (Py_ssize_t)sizeof(double);
    p->n = values / 2;
    Py_ssize_t nnz = p->v[INDICES].len / (Py_ssize_t)sizeof(int);
    const int *ptr = p->v[INDPTR].buf, *idx = p->v[INDICES].buf;
    const char *problem = NULL;
    if (values % 2 != 0 || p->n < 1)
        problem = "embedding must hold N x 2 values, N >= 1";
    else if (p->v[GRADIENT].len != p->v[EMBEDDING].len)
        problem = "gradient must have the embedding's shape";
    else if (p->v[INDPTR].len / (Py_ssize_t)sizeof(int) != p->n + 1)
        problem = "indptr must have N + 1 entries";
    else if (p->v[DATA].len / (Py_ssize_t)sizeof(double) != nnz)
        problem = "data and indices must have the same length";
    else if (ptr[0] != 0 || ptr[p->n] != nnz)
        problem = "indptr must run from 0 to the number of stored values";
    if (problem == NULL) {
        for (Py_ssize_t i = 0; i < p->n && problem == NULL; i++)
            if (ptr[i + 1] < ptr[i])
                problem = "indptr must not decrease";
        for (Py_ssize_t k = 0; k < nnz && problem == NULL; k++)
            if (idx[k] < 0 || idx[k] >= p->n)
                problem = "indices must be row numbers of the embedding";
    }
    if (problem != NULL) {
        PyErr_SetString(PyExc_ValueError, problem);
        release_all(p->v, PROBLEM_BUFFERS);
        return -1;
    }
    return 0;
}

/* Adds the attraction sum_j p_ij w_ij (y_i - y_j) to (gx, gy); returns sum_ij p_ij log(w_ij)
 * when asked (for the KL divergence), else 0. */
static double
attract(const Problem *p, const double *x, const double *y, double *gx, double *gy, int with_error)
{
    const int *ptr = p->v[INDPTR].buf, *idx = p->v[INDICES].buf;
    const double *val = p->v[DATA].buf;
    double log_w = 0.0;
    for (Py_ssize_t i = 0; i < p->n; i++) {
        double xi = x[i], yi = y[i], ax = 0.0, ay = 0.0;
        for (int k = ptr[i]; k < ptr[i + 1]; k++) {
            int j = idx[k];
            double dx = xi - x[j], dy = yi - y[j];
            double w = 1.0 / (1.0 + dx * dx + dy * dy);
            double pw = val[k] * w;
            ax += pw * dx;
            ay += pw * dy;
            if (with_error && val[k] > 0.0)
                log_w += val[k] * log(w);
        }
        gx[i] += ax;
        gy[i] += ay;
    }
    return log_w;
}

/* sum_j w_ij^2 (y_i - y_j) over all pairs, into (rx, ry), each pair visited once; returns Z. */
static double
repel(Py_ssize_t n, const double *x, const double *y, double *rx, double *ry)
{
    double z = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        rx[i] = 0.0;
        ry[i] = 0.0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double xi = x[i], yi = y[i], ax = 0.0, ay = 0.0, s = 0.0;
#pragma omp simd reduction(+ : ax, ay, s)
        for (Py_ssize_t j = i + 1; j < n; j++) {
            double dx = xi - x[j], dy = yi - y[j];
            double w = 1.0 / (1.0 + dx * dx + dy * dy);
            double w2 = w * w;
            s += w;
            ax += w2 * dx;
            ay += w2 * dy;
            rx[j] -= w2 * dx;
            ry[j] -= w2 * dy;
        }
        z += 2.0 * s;
        rx[i] += ax;
        ry[i] += ay;
    }
    return z;
}

/* sum p and sum p log p over the stored affinities (for the KL divergence). */
static void
p_sums(const Problem *p, double *sum, double *sum_log)
{
    const double *val = p->v[DATA].buf;
    Py_ssize_t nnz = p->v[DATA].len / (Py_ssize_t)sizeof(double);
    *sum = 0.0;
    *sum_log = 0.0;
    for (Py_ssize_t k = 0; k < nnz; k++) {
        *sum += val[k];
        if (val[k] > 0.0)
            *sum_log += val[k] * log(val[k]);
    }
}

/* One gradient, with the GIL released: exact (repulsion and attraction) or attraction only. */
static PyObject *
run(PyObject *args, PyObject *kwargs, int exact)
{
    Problem p;
    int with_error;
    if (parse(args, kwargs, &p, &with_error) < 0)
        return NULL;
    Py_ssize_t n = p.n;
    double *scratch = malloc(sizeof(double) * 4 * (size_t)n);
    if (scratch == NULL) {
        release_all(p.v, PROBLEM_BUFFERS);
        return PyErr_NoMemory();
    }
    double *x = scratch, *y = scratch + n, *gx = scratch + 2 * n, *gy = scratch + 3 * n;
    const double *yy = p.v[EMBEDDING].buf;
    double *out = p.v[GRADIENT].buf;
    double z = 0.0, log_w = 0.0, plogp = 0.0, psum = 0.0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        x[i] = yy[2 * i];
        y[i] = yy[2 * i + 1];
    }
    if (exact) {
        z = repel(n, x, y, gx, gy);
        double scale = z > 0.0 ? -1.0 / z : 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            gx[i] *= scale;
            gy[i] *= scale;
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            gx[i] = out[2 * i];
            gy[i] = out[2 * i + 1];
        }
    }
    log_w = attract(&p, x, y, gx, gy, with_error);
    if (with_error) {
        p_sums(&p, &psum, &plogp);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = gx[i];
        out[2 * i + 1] = gy[i];
    }
    Py_END_ALLOW_THREADS
    free(scratch);
    release_all(p.v, PROBLEM_BUFFERS);
    if (!exact)
        return Py_BuildValue("d", with_error ? plogp - log_w : 0.0);
    /* KL(P || Q) with q_ij = w_ij / Z: sum p log p - sum p log w + (sum p) log Z. */
    double kl = with_error ? plogp - log_w + psum * log(z) : 0.0;
    return Py_BuildValue("dd", z, kl);
}

static PyObject *
exact_gradient(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    return run(args, kwargs, 1);
}

static PyObject *
add_attraction(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    return run(args, kwargs, 0);
}

/* One step of openTSNE's gradient descent (delta-bar-delta gains and momentum, steps clipped to
 * max_step), in place, with the same operations in the same order as its NumPy loop:
 *     gains  = sign(update) != sign(gradient) ? gains + 0.2 : gains * 0.8 + min_gain
 *     update = momentum * update - (learning_rate * gains) * gradient, clipped to norm max_step
 *     embedding += update, then centred. */
static PyObject *
descend(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[4];
    double learning_rate, momentum, min_gain, max_step;
    if (!PyArg_ParseTuple(args, "OOOOdddd", &objs[0], &objs[1], &objs[2], &objs[3], &learning_rate, &momentum,
                          &min_gain, &max_step))
        return NULL;
    Py_buffer v[4] = {{0}};
    static const Argument arguments[] = {
        {"embedding", "d", sizeof(double), 1}, {"gradient", "d", sizeof(double), 0},
        {"update", "d", sizeof(double), 1}, {"gains", "d", sizeof(double), 1},
    };
    int ok = take_all(objs, v, arguments, 4) == 0;
    Py_ssize_t values = ok ? v[0].len / (Py_ssize_t)sizeof(double) : 0;
    if (ok && (values % 2 != 0 || v[1].len != v[0].len || v[2].len != v[0].len || v[3].len != v[0].len)) {
        PyErr_SetString(PyExc_ValueError, "embedding, gradient, update and gains must all be N x 2");
        ok = 0;
    }
    if (ok && values > 0) {
        double *y = v[0].buf, *u = v[2].buf, *g = v[3].buf;
        const double *grad = v[1].buf;
        Py_ssize_t n = values / 2;
        double mean[2] = {0.0, 0.0};
        for (Py_ssize_t c = 0; c < values; c++) {
            int flipped = ((u[c] > 0) - (u[c] < 0)) != ((grad[c] > 0) - (grad[c] < 0));
            g[c] = flipped ? g[c] + 0.2 : g[c] * 0.8 + min_gain;
            u[c] = momentum * u[c] - (learning_rate * g[c]) * grad[c];
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            double norm = sqrt(u[2 * i] * u[2 * i] + u[2 * i + 1] * u[2 * i + 1]);
            if (norm > max_step) {
                u[2 * i] = u[2 * i] / norm * max_step;
                u[2 * i + 1] = u[2 * i + 1] / norm * max_step;
            }
            y[2 * i] += u[2 * i];
            y[2 * i + 1] += u[2 * i + 1];
            mean[0] += y[2 * i];
            mean[1] += y[2 * i + 1];
        }
        mean[0] /= (double)n;
        mean[1] /= (double)n;
        for (Py_ssize_t i = 0; i < n; i++) {
            y[2 * i] -= mean[0];
            y[2 * i + 1] -= mean[1];
        }
    }
    return finish(v, 4, ok);
}

/* ---- affinities ---------------------------------------------------------------------------- */

/* Gaussian p(j|i) over each row's k neighbours, the precision beta found so that the entropy is
 * log(perplexity) within tol: Newton steps in log(beta), bisection whenever a step would leave the
 * bracket known to hold the root (reporter.embed._conditional_probabilities explains the sums).
 * sq_dists rows are ascending; beta holds the starting values and receives the results. */
static PyObject *
bandwidths(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[3];
    double perplexity, tol;
    Py_ssize_t max_steps;
    if (!PyArg_ParseTuple(args, "OOOddn", &objs[0], &objs[1], &objs[2], &perplexity, &tol, &max_steps))
        return NULL;
    Py_buffer v[3] = {{0}};
    static const Argument arguments[] = {
        {"sq_dists", "d", sizeof(double), 0}, {"beta", "d", sizeof(double), 1}, {"p", "d", sizeof(double), 1},
    };
    int ok = take_all(objs, v, arguments, 3) == 0;
    Py_ssize_t n = 0, k = 0;
    if (ok) {
        if (v[0].ndim != 2 || v[0].shape[1] < 1 || v[2].len != v[0].len
            || v[1].len / (Py_ssize_t)sizeof(double) != v[0].shape[0] || !(perplexity > 1.0)) {
            PyErr_SetString(PyExc_ValueError, "sq_dists and p must be N x k, beta N, perplexity above 1");
            ok = 0;
        } else {
            n = v[0].shape[0];
            k = v[0].shape[1];
        }
    }
    if (ok) {
        const double *sq = v[0].buf;
        double *beta = v[1].buf, *p = v[2].buf;
        double target = log(perplexity);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const double *row = sq + i * k;
            double *out = p + i * k;
            double b = beta[i], lo = 0.0, hi = INFINITY;
            for (Py_ssize_t step = 0; step < max_steps; step++) {
                double z = 0.0, mean = 0.0, second = 0.0;
                for (Py_ssize_t j = 0; j < k; j++) {
                    double d = row[j] - row[0];
                    out[j] = exp(-b * d);
                    z += out[j];
                }
                for (Py_ssize_t j = 0; j < k; j++) {
                    double d = row[j] - row[0], q = out[j] / z;
                    mean += q * d;
                    second += q * d * d;
                }
                double error = log(z) + b * mean - target; /* entropy - log(perplexity) */
                if (fabs(error) < tol)
                    break;
                if (error > 0) /* the entropy falls as beta grows: the root lies above b */
                    lo = b;
                else
                    hi = b;
                double newton = b * exp(error / (b * b * (second - mean * mean)));
                if (isfinite(newton) && newton > lo && newton < hi)
                    b = newton;
                else
                    b = isinf(hi) ? b * 2.0 : (lo > 0 ? sqrt(lo * hi) : b / 2.0);
            }
            double z = 0.0;
            for (Py_ssize_t j = 0; j < k; j++) {
                out[j] = exp(-b * (row[j] - row[0]));
                z += out[j];
            }
            for (Py_ssize_t j = 0; j < k; j++)
                out[j] /= z;
            beta[i] = b;
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 3, ok);
}

/* ---- nearest neighbours ------------------------------------------------------------------ */

/* Sifts heap[0] down a max-heap of k values. */
static void
sift_down(float *heap, Py_ssize_t k)
{
    Py_ssize_t at = 0;
    float value = heap[0];
    for (;;) {
        Py_ssize_t child = 2 * at + 1;
        if (child >= k)
            break;
        if (child + 1 < k && heap[child + 1] > heap[child])
            child++;
        if (!(heap[child] > value))
            break;
        heap[at] = heap[child];
        at = child;
    }
    heap[at] = value;
}

/* Rows are scanned in runs of SPAN values: one vectorised test tells whether any value of the run
 * can matter, and only such runs are looked at one by one (most are not). */
#define SPAN 16

/* Whether any of row[j0..j0 + SPAN) is <= limit. */
static inline int
any_at_most(const float *row, Py_ssize_t j0, float limit)
{
    int any = 0;
#pragma omp simd reduction(| : any)
    for (Py_ssize_t t = 0; t < SPAN; t++)
        any |= row[j0 + t] <= limit;
    return any;
}

/* The k-th smallest of row[j], j != i (1 <= k < n): one pass keeping the k smallest in a max-heap
 * (scratch, k floats). */
static float
kth_smallest(const float *row, Py_ssize_t n, Py_ssize_t i, Py_ssize_t k, float *heap)
{
    Py_ssize_t filled = 0, j = 0;
    while (filled < k) {
        if (j != i) {
            Py_ssize_t at = filled++;
            while (at > 0 && heap[(at - 1) / 2] < row[j]) {
                heap[at] = heap[(at - 1) / 2];
                at = (at - 1) / 2;
            }
            heap[at] = row[j];
        }
        j++;
    }
    for (; j < n; j++) {
        if (j % SPAN == 0 && j + SPAN <= n && !any_at_most(row, j, heap[0])) {
            j += SPAN - 1;  /* none is smaller than the k-th so far (equal ones change nothing) */
            continue;
        }
        if (j != i && row[j] < heap[0]) {
            heap[0] = row[j];
            sift_down(heap, k);
        }
    }
    return heap[0];
}

/* Indices j != i with row[j] <= limit, in increasing order, into candidates; returns how many,
 * or stops early once there are more than cap (candidates has room for n). */
static Py_ssize_t
inside(const float *row, Py_ssize_t n, Py_ssize_t i, float limit, Py_ssize_t cap, int *candidates)
{
    Py_ssize_t count = 0, j = 0;
    for (; j + SPAN <= n && count <= cap; j += SPAN) {
        if (!any_at_most(row, j, limit))
            continue;
        for (Py_ssize_t t = j; t < j + SPAN; t++) {
            candidates[count] = (int)t;
            count += row[t] <= limit && t != i;
        }
    }
    for (; j < n && count <= cap; j++) {
        candidates[count] = (int)j;
        count += row[j] <= limit && j != i;
    }
    return count;
}

/* The k nearest of point i's candidates (given in increasing index order) by their direct squared
 * distance, nearest first, equal distances in index order; count >= k. */
static void
rank(const double *X, Py_ssize_t d, Py_ssize_t i, const int *candidates, Py_ssize_t count,
     Py_ssize_t k, long long *index, double *dist)
{
    const double *xi = X + i * d;
    Py_ssize_t filled = 0;
    for (Py_ssize_t c = 0; c < count; c++) {
        const double *xj = X + (Py_ssize_t)candidates[c] * d;
        double s = 0.0;
        for (Py_ssize_t t = 0; t < d; t++) {
            double u = xi[t] - xj[t];
            s += u * u;
        }
        if (filled == k && !(s < dist[k - 1]))
            continue; /* not nearer than the k-th, or as near with a larger index */
        Py_ssize_t pos = filled < k ? filled++ : k - 1;
        while (pos > 0 && dist[pos - 1] > s) {
            dist[pos] = dist[pos - 1];
            index[pos] = index[pos - 1];
            pos--;
        }
        dist[pos] = s;
        index[pos] = candidates[c];
    }
}

static PyObject *
select_nearest(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[7];
    Py_ssize_t start, k, loose;
    if (!PyArg_ParseTuple(args, "OOOOnnnOO", &objs[0], &objs[1], &objs[2], &objs[3], &start, &k, &loose,
                          &objs[4], &objs[5]))
        return NULL;
    Py_buffer v[6] = {{0}};
    static const Argument arguments[] = {
        {"block", "f", sizeof(float), 0}, {"limit", "f", sizeof(float), 0}, {"slack", "f", sizeof(float), 0},
        {"X", "d", sizeof(double), 0}, {"neighbours", "lq", 8, 1}, {"sq_dists", "d", sizeof(double), 1},
    };
    int ok = take_all(objs, v, arguments, 6) == 0;
    Py_ssize_t m = 0, n = 0, d = 0;
    if (ok) {
        const char *problem = NULL;
        if (v[3].ndim != 2 || v[0].ndim != 2)
            problem = "X and block must be 2-D";
        else {
            n = v[3].shape[0];
            d = v[3].shape[1];
            m = v[0].shape[0];
            if (v[0].shape[1] != n)
                problem = "block must have a column per point of X";
            else if (v[1].len / (Py_ssize_t)sizeof(float) != m || v[2].len / (Py_ssize_t)sizeof(float) != m)
                problem = "limit and slack must have a value per row of block";
            else if (start < 0 || start + m > n)
                problem = "rows start..start + len(block) must be points of X";
            else if (k < 1 || k >= n || loose < 1)
                problem = "k must be between 1 and N - 1, loose at least 1";
            else if (n > INT_MAX)
                problem = "too many points";
            else if (v[4].len / 8 != m * k || v[5].len / (Py_ssize_t)sizeof(double) != m * k)
                problem = "neighbours and sq_dists must be len(block) x k";
        }
        if (problem != NULL) {
            PyErr_SetString(PyExc_ValueError, problem);
            ok = 0;
        }
    }
    int *candidates = NULL;
    float *scratch = NULL;
    if (ok) {
        candidates = malloc(sizeof(int) * (size_t)n);
        scratch = malloc(sizeof(float) * (size_t)k);
        if (candidates == NULL || scratch == NULL) {
            PyErr_NoMemory();
            ok = 0;
        }
    }
    Py_ssize_t redone = 0;
    if (ok) {
        const float *block = v[0].buf, *limit = v[1].buf, *slack = v[2].buf;
        const double *X = v[3].buf;
        long long *index = v[4].buf;
        double *dist = v[5].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < m; r++) {
            Py_ssize_t i = start + r;
            const float *row = block + r * n;
            Py_ssize_t count = inside(row, n, i, limit[r], loose * k, candidates);
            if (count < k || count > loose * k) {
                /* A poor guess (the latents moved far since it was made), or one naming a point
                 * twice: this row's radius becomes its own k-th distance. */
                float own = kth_smallest(row, n, i, k, scratch) + slack[r];
                count = inside(row, n, i, own, n, candidates);
                redone++;
            }
            rank(X, d, i, candidates, count, k, index + r * k, dist + r * k);
        }
        Py_END_ALLOW_THREADS
    }
    free(candidates);
    free(scratch);
    release_all(v, 6);
    return ok ? PyLong_FromSsize_t(redone) : NULL;
}

/* Per point, the largest direct squared distance to its guessed neighbours. */
static PyObject *
farthest_guessed(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[3];
    if (!PyArg_ParseTuple(args, "OOO", &objs[0], &objs[1], &objs[2]))
        return NULL;
    Py_buffer v[3] = {{0}};
    static const Argument arguments[] = {
        {"X", "d", sizeof(double), 0}, {"guess", "lq", 8, 0}, {"radius", "d", sizeof(double), 1},
    };
    int ok = take_all(objs, v, arguments, 3) == 0;
    if (ok && (v[0].ndim != 2 || v[1].ndim != 2 || v[1].shape[0] != v[0].shape[0]
               || v[2].len / (Py_ssize_t)sizeof(double) != v[0].shape[0])) {
        PyErr_SetString(PyExc_ValueError, "X must be N x d, guess N x k, radius N");
        ok = 0;
    }
    if (ok) {
        Py_ssize_t n = v[0].shape[0], k = v[1].shape[1];
        const long long *guess = v[1].buf;
        for (Py_ssize_t c = 0; c < n * k && ok; c++)
            ok = guess[c] >= 0 && guess[c] < n;
        if (!ok)
            PyErr_SetString(PyExc_ValueError, "guess must hold row numbers of X");
    }
    if (ok) {
        Py_ssize_t n = v[0].shape[0], d = v[0].shape[1], k = v[1].shape[1];
        const double *X = v[0].buf;
        const long long *guess = v[1].buf;
        double *radius = v[2].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            double far = 0.0;
            for (Py_ssize_t c = 0; c < k; c++) {
                const double *xi = X + i * d, *xj = X + guess[i * k + c] * d;
                double s = 0.0;
                for (Py_ssize_t t = 0; t < d; t++) {
                    double u = xi[t] - xj[t];
                    s += u * u;
                }
                far = s > far ? s : far;
            }
            radius[i] = far;
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 3, ok);
}

/* ---- trustworthiness ------------------------------------------------------------------------ */

/* For each pair p: 1 + how many points j are strictly nearer to point rows[local[p]] than cols[p]
 * is, by squared distances (sq_norms[i] - 2 dots[r, j]) + sq_norms[j] in that order, as NumPy
 * computes the expanded formula; the point itself is never nearer (sklearn gives it distance inf). */
static PyObject *
count_nearer(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[6];
    if (!PyArg_ParseTuple(args, "OOOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5]))
        return NULL;
    Py_buffer v[6] = {{0}};
    static const Argument arguments[] = {
        {"dots", "d", sizeof(double), 0}, {"sq_norms", "d", sizeof(double), 0}, {"rows", "lq", 8, 0},
        {"local", "lq", 8, 0}, {"cols", "lq", 8, 0}, {"ranks", "lq", 8, 1},
    };
    int ok = take_all(objs, v, arguments, 6) == 0;
    Py_ssize_t m = 0, n = 0, pairs = 0;
    if (ok) {
        n = v[1].len / (Py_ssize_t)sizeof(double);
        m = v[2].len / 8;
        pairs = v[3].len / 8;
        if (v[0].len / (Py_ssize_t)sizeof(double) != m * n || v[4].len / 8 != pairs || v[5].len / 8 != pairs) {
            PyErr_SetString(PyExc_ValueError, "dots must be len(rows) x N, local, cols and ranks of one length");
            ok = 0;
        }
    }
    if (ok) {
        const long long *rows = v[2].buf, *local = v[3].buf, *cols = v[4].buf;
        for (Py_ssize_t r = 0; r < m && ok; r++)
            ok = rows[r] >= 0 && rows[r] < n;
        for (Py_ssize_t p = 0; p < pairs && ok; p++)
            ok = local[p] >= 0 && local[p] < m && cols[p] >= 0 && cols[p] < n;
        if (!ok)
            PyErr_SetString(PyExc_ValueError, "rows and cols must be points, local rows of dots");
    }
    if (ok) {
        const double *dots = v[0].buf, *sq = v[1].buf;
        const long long *rows = v[2].buf, *local = v[3].buf, *cols = v[4].buf;
        long long *ranks = v[5].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t p = 0; p < pairs; p++) {
            const double *row = dots + local[p] * n;
            Py_ssize_t i = rows[local[p]];
            double sq_i = sq[i];
            double reference = (sq_i - 2.0 * row[cols[p]]) + sq[cols[p]];
            Py_ssize_t nearer = 0;
#pragma omp simd reduction(+ : nearer)
            for (Py_ssize_t j = 0; j < n; j++)
                nearer += ((sq_i - 2.0 * row[j]) + sq[j]) < reference;
            nearer -= ((sq_i - 2.0 * row[i]) + sq_i) < reference; /* the point itself */
            ranks[p] = nearer + 1;
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 6, ok);
}

static PyMethodDef methods[] = {
    {"exact_gradient", (PyCFunction)(void (*)(void))exact_gradient, METH_VARARGS | METH_KEYWORDS,
     "exact_gradient(embedding, indptr, indices, data, gradient, *, with_error=False) -> (Z, kl)\n\n"
     "Writes the exact t-SNE gradient of the (N, 2) float64 embedding under the CSR affinities\n"
     "(int32 indptr and indices, float64 data) into gradient; returns the normaliser Z and, when\n"
     "with_error is True, the KL divergence (else 0)."},
    {"add_attraction", (PyCFunction)(void (*)(void))add_attraction, METH_VARARGS | METH_KEYWORDS,
     "add_attraction(embedding, indptr, indices, data, gradient, *, with_error=False) -> float\n\n"
     "Adds the attractive part of the gradient to gradient (which holds the normalised\n"
     "repulsion); returns sum p log p - sum p log w when with_error is True (else 0)."},
    {"descend", descend, METH_VARARGS,
     "descend(embedding, gradient, update, gains, learning_rate, momentum, min_gain, max_step)\n\n"
     "One step of openTSNE's gradient descent, in place on embedding, update and gains (all N x 2\n"
     "float64)."},
    {"bandwidths", bandwidths, METH_VARARGS,
     "bandwidths(sq_dists, beta, p, perplexity, tol, max_steps)\n\n"
     "Per row of the ascending (N, k) squared distances: the Gaussian precision beta (in place,\n"
     "from its starting value) whose p(j|i) has entropy log(perplexity) within tol, and those\n"
     "p(j|i) into p (N x k)."},
    {"select_nearest", select_nearest, METH_VARARGS,
     "select_nearest(block, limit, slack, X, start, k, loose, neighbours, sq_dists) -> int\n\n"
     "For each row r of the float32 block of squared distances (points start + r of X against all):\n"
     "the points j != start + r with block[r, j] <= limit[r] (or, if fewer than k or more than\n"
     "loose x k, within the row's own k-th value + slack[r]), ranked by their direct float64\n"
     "squared distance in X, ties by index; the k nearest go to the rows of neighbours (int64)\n"
     "and sq_dists. Returns how many rows needed their own k-th value."},
    {"farthest_guessed", farthest_guessed, METH_VARARGS,
     "farthest_guessed(X, guess, radius)\n\n"
     "radius[i] = the largest direct squared distance from X[i] to the points guess[i] (int64)."},
    {"count_nearer", count_nearer, METH_VARARGS,
     "count_nearer(dots, sq_norms, rows, local, cols, ranks)\n\n"
     "ranks[p] = 1 + the number of points nearer to point rows[local[p]] than point cols[p], by the\n"
     "expanded squared distance from dots = X[rows] @ X.T and sq_norms (int64 indices)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "The inner loops of a frame's embedding, in C.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
