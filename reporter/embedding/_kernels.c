/* The inner loops of a frame, in C: reporter.embedding._kernels.
 *
 * 1. The t-SNE gradient of a 2-D embedding (reporter.embedding.embed). Below a few thousand points the
 *    exact repulsion (every pair, O(N^2)) is cheaper than openTSNE's Barnes-Hut or FFT
 *    approximations and has no approximation error. The attraction runs over the sparse
 *    affinities P (CSR). The signs and normalisation are openTSNE's (kl_divergence_bh with
 *    theta = 0, degrees of freedom 1): with w_ij = 1 / (1 + |y_i - y_j|^2), Z = sum_{i != j} w_ij,
 *
 *        gradient_i = sum_j p_ij w_ij (y_i - y_j)  -  sum_j w_ij^2 (y_i - y_j) / Z
 *
 *    And the step of openTSNE's gradient descent that follows each gradient.
 *
 * 2. From a few thousand points on, the repulsion's FFT interpolation (FIt-SNE's): spreading the
 *    points onto a grid and reading the potentials back (the FFT itself is SciPy's).
 *
 * 3. The symmetric affinities P + P^T from the neighbour lists (reporter.embedding.embed).
 *
 * 4. The exact nearest-neighbour search (reporter.embedding.neighbours): float32 squared distances tile by
 *    tile, the points inside each row's radius kept and ranked by their direct float64 distance,
 *    ties by index.
 *
 * 5. The ranks trustworthiness needs beyond the known neighbours (reporter.embedding.quality): how many
 *    points are nearer, counted without copying rows of the distance matrix.
 *
 * The loops are written so that the compiler vectorises them (-fopenmp-simd; no fast-math, no
 * fused multiply-adds: the same results on every run, and the same rounding as NumPy's where a
 * result must match it). The hottest are built for AVX2 too (WIDE_CLONES); a sum vectorised
 * eight wide instead of four is added in another order, so their results can differ in the last
 * bits between a CPU with AVX2 and one without (never between runs on one machine). The distance
 * tiles have a version for each (same results on both). Arrays come in through the buffer
 * protocol (NumPy arrays, C-contiguous), so building this needs no NumPy headers. The Python callers check shapes and types first; this
 * file checks them again and raises ValueError rather than read out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Built twice on x86-64 (AVX2 and the baseline), the one this CPU runs chosen at load time: the
 * extension is built for the baseline, where the vectorised loops are about half as fast.
 * -DLATENTLAPSE_BASELINE_ONLY builds the baseline alone (to measure a CPU without AVX2). */
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(LATENTLAPSE_BASELINE_ONLY)
#define WIDE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define WIDE_CLONES
#endif

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
WIDE_CLONES static double
attract(const Problem *p, const double *x, const double *y, double *gx, double *gy, int with_error)
{
    const int *ptr = p->v[INDPTR].buf, *idx = p->v[INDICES].buf;
    const double *val = p->v[DATA].buf;
    double log_w = 0.0;
    for (Py_ssize_t i = 0; i < p->n; i++) {
        double xi = x[i], yi = y[i], ax = 0.0, ay = 0.0;
#pragma omp simd reduction(+ : ax, ay)
        for (int k = ptr[i]; k < ptr[i + 1]; k++) {
            int j = idx[k];
            double dx = xi - x[j], dy = yi - y[j];
            double pw = val[k] / (1.0 + dx * dx + dy * dy);
            ax += pw * dx;
            ay += pw * dy;
        }
        gx[i] += ax;
        gy[i] += ay;
        if (with_error)
            for (int k = ptr[i]; k < ptr[i + 1]; k++) {
                int j = idx[k];
                double dx = xi - x[j], dy = yi - y[j];
                if (val[k] > 0.0)
                    log_w -= val[k] * log(1.0 + dx * dx + dy * dy);
            }
    }
    return log_w;
}

/* sum_j w_ij^2 (y_i - y_j) over all pairs, into (rx, ry), each pair visited once; returns Z. */
WIDE_CLONES static double
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
 * bracket known to hold the root (reporter.embedding.embed._conditional_probabilities explains the sums).
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

/* ---- the symmetric affinities ---------------------------------------------------------------- */

/* symmetrize(neighbours, conditional) -> (indptr, indices, data): C + C^T in CSR, where row i of C
 * holds conditional[i] at the columns neighbours[i]; columns in order, zeros left out, a pair in
 * both rows summed as c_ij + c_ji (as SciPy's csr + csr does it). */
static PyObject *
symmetrize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[2];
    if (!PyArg_ParseTuple(args, "OO", &objs[0], &objs[1]))
        return NULL;
    Py_buffer v[2] = {{0}};
    static const Argument arguments[] = {{"neighbours", "lq", 8, 0}, {"conditional", "d", sizeof(double), 0}};
    int ok = take_all(objs, v, arguments, 2) == 0;
    Py_ssize_t n = 0, k = 0;
    if (ok) {
        if (v[0].ndim != 2 || v[1].ndim != 2 || v[0].shape[0] != v[1].shape[0] || v[0].shape[1] != v[1].shape[1]
            || v[0].shape[0] > INT_MAX / (2 * (v[0].shape[1] + 1))) {
            PyErr_SetString(PyExc_ValueError, "neighbours and conditional must be N x k alike (and N x 2k fit int32)");
            ok = 0;
        } else {
            n = v[0].shape[0];
            k = v[0].shape[1];
            const long long *nb = v[0].buf;
            for (Py_ssize_t c = 0; c < n * k && ok; c++)
                ok = nb[c] >= 0 && nb[c] < n;
            if (!ok)
                PyErr_SetString(PyExc_ValueError, "neighbours must be row numbers");
        }
    }
    if (!ok) {
        release_all(v, 2);
        return NULL;
    }
    long long *col = malloc(sizeof(long long) * (size_t)(n * k));
    double *val = malloc(sizeof(double) * (size_t)(n * k));
    int *tptr = calloc((size_t)n + 1, sizeof(int)), *tcol = malloc(sizeof(int) * (size_t)(n * k));
    int *fill = malloc(sizeof(int) * ((size_t)n + 1));
    double *tval = malloc(sizeof(double) * (size_t)(n * k));
    PyObject *indptr = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int) * (n + 1));
    PyObject *result = NULL;
    if (col == NULL || val == NULL || tptr == NULL || tcol == NULL || tval == NULL || fill == NULL || indptr == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int *ptr = (int *)PyByteArray_AS_STRING(indptr);
    Py_ssize_t total = 0;
    Py_BEGIN_ALLOW_THREADS
    /* C^T by counting: row j lists the rows i that name j, in increasing i. */
    const long long *nb = v[0].buf;
    const double *cond = v[1].buf;
    for (Py_ssize_t c = 0; c < n * k; c++)
        tptr[nb[c] + 1]++;
    for (Py_ssize_t j = 0; j < n; j++)
        tptr[j + 1] += tptr[j];
    memcpy(fill, tptr, sizeof(int) * (size_t)n);
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t a = 0; a < k; a++) {
            int at = fill[nb[i * k + a]]++;
            tcol[at] = (int)i;
            tval[at] = cond[i * k + a];
        }
    /* And C with each row's columns in order: C^T transposed back, its rows taken in order. */
    memset(fill, 0, sizeof(int) * (size_t)n);
    for (Py_ssize_t j = 0; j < n; j++)
        for (int e = tptr[j]; e < tptr[j + 1]; e++) {
            Py_ssize_t i = tcol[e], at = i * k + fill[i]++;
            col[at] = j;
            val[at] = tval[e];
        }
    /* Merged row lengths: the union of row i of C and of C^T, without zero sums. */
    ptr[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const long long *ca = col + i * k;
        const double *va = val + i * k;
        Py_ssize_t a = 0, b = tptr[i], count = 0;
        while (a < k || b < tptr[i + 1]) {
            double x;
            if (b >= tptr[i + 1] || (a < k && ca[a] < tcol[b]))
                x = va[a++] + 0.0;
            else if (a >= k || tcol[b] < ca[a])
                x = 0.0 + tval[b++];
            else
                x = va[a++] + tval[b++];
            count += x != 0.0;
        }
        ptr[i + 1] = ptr[i] + (int)count;
    }
    total = ptr[n];
    Py_END_ALLOW_THREADS
    PyObject *indices = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int) * total);
    PyObject *data = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(double) * total);
    if (indices == NULL || data == NULL) {
        Py_XDECREF(indices);
        Py_XDECREF(data);
        goto done;
    }
    int *out_col = (int *)PyByteArray_AS_STRING(indices);
    double *out_val = (double *)PyByteArray_AS_STRING(data);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const long long *ca = col + i * k;
        const double *va = val + i * k;
        Py_ssize_t a = 0, b = tptr[i], at = ptr[i];
        while (a < k || b < tptr[i + 1]) {
            double x;
            long long c;
            if (b >= tptr[i + 1] || (a < k && ca[a] < tcol[b])) {
                c = ca[a];
                x = va[a++] + 0.0;
            } else if (a >= k || tcol[b] < ca[a]) {
                c = tcol[b];
                x = 0.0 + tval[b++];
            } else {
                c = ca[a];
                x = va[a++] + tval[b++];
            }
            if (x != 0.0) {
                out_col[at] = (int)c;
                out_val[at++] = x;
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("OOO", indptr, indices, data);
    Py_DECREF(indices);
    Py_DECREF(data);
done:
    Py_XDECREF(indptr);
    free(col);
    free(val);
    free(tptr);
    free(tcol);
    free(tval);
    free(fill);
    release_all(v, 2);
    return result;
}

/* ---- the FFT-interpolated repulsion ------------------------------------------------------------
 *
 * FIt-SNE's method (Linderman et al. 2019), as openTSNE computes it for 2-D embeddings with one
 * degree of freedom: the plane over the embedding is cut into n_boxes x n_boxes square boxes,
 * each with INTERPOLATION x INTERPOLATION nodes (at 1/6, 1/2 and 5/6 of the box); every point
 * spreads the four terms 1, x, y, x^2 + y^2 onto the nodes of its box with Lagrange weights
 * (fft_spread), the squared Cauchy kernel is applied between all nodes by an FFT convolution
 * (reporter.embedding.embed, SciPy's FFT), and each point reads the four potentials back with the same
 * weights (fft_gather), which give Z and the normalised repulsion. */
#define INTERPOLATION 3

/* Lagrange weights of the INTERPOLATION nodes of a box (at 1/6, 1/2, 5/6 of it), at position u in
 * [0, 1] of the box. */
static void
lagrange_weights(double u, double *w)
{
    const double a = u - 1.0 / 6.0, b = u - 0.5, c = u - 5.0 / 6.0;
    /* denominators: (1/6 - 1/2)(1/6 - 5/6) = 2/9, (1/2 - 1/6)(1/2 - 5/6) = -1/9, (5/6 - 1/6)(5/6 - 1/2) = 2/9 */
    w[0] = b * c * 4.5;
    w[1] = a * c * -9.0;
    w[2] = a * b * 4.5;
}

static PyObject *
fft_spread(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[4];
    double lo, width;
    Py_ssize_t boxes;
    if (!PyArg_ParseTuple(args, "OddnOOO", &objs[0], &lo, &width, &boxes, &objs[1], &objs[2], &objs[3]))
        return NULL;
    Py_buffer v[4] = {{0}};
    static const Argument arguments[] = {
        {"embedding", "d", sizeof(double), 0}, {"cells", "i", sizeof(int), 1},
        {"weights", "d", sizeof(double), 1}, {"coefficients", "d", sizeof(double), 1},
    };
    int ok = take_all(objs, v, arguments, 4) == 0;
    Py_ssize_t n = 0, nodes = boxes * INTERPOLATION;
    if (ok) {
        n = v[0].len / (Py_ssize_t)(2 * sizeof(double));
        if (v[0].ndim != 2 || v[0].shape[1] != 2 || v[1].len / (Py_ssize_t)sizeof(int) != n
            || v[2].len / (Py_ssize_t)sizeof(double) != 2 * INTERPOLATION * n
            || v[3].len / (Py_ssize_t)sizeof(double) != 4 * nodes * nodes || boxes < 1 || !(width > 0.0)) {
            PyErr_SetString(PyExc_ValueError, "embedding must be N x 2, cells N, weights N x 6, coefficients "
                                              "nodes x nodes x 4 (nodes = 3 x boxes), the box width positive");
            ok = 0;
        }
    }
    if (ok) {
        const double *e = v[0].buf;
        int *cells = v[1].buf;
        double *weights = v[2].buf, *c = v[3].buf;
        Py_BEGIN_ALLOW_THREADS
        memset(c, 0, sizeof(double) * (size_t)(4 * nodes * nodes));
        for (Py_ssize_t i = 0; i < n; i++) {
            double x = e[2 * i], y = e[2 * i + 1];
            Py_ssize_t bx = (Py_ssize_t)((x - lo) / width), by = (Py_ssize_t)((y - lo) / width);
            bx = bx < 0 ? 0 : bx >= boxes ? boxes - 1 : bx;  /* the largest coordinate: the last box */
            by = by < 0 ? 0 : by >= boxes ? boxes - 1 : by;
            double *wx = weights + 2 * INTERPOLATION * i, *wy = wx + INTERPOLATION;
            lagrange_weights((x - (bx * width + lo)) / width, wx);
            lagrange_weights((y - (by * width + lo)) / width, wy);
            cells[i] = (int)(bx * boxes + by);
            double term[4] = {1.0, x, y, x * x + y * y};
            for (int a = 0; a < INTERPOLATION; a++)
                for (int b = 0; b < INTERPOLATION; b++) {
                    Py_ssize_t node = (bx * INTERPOLATION + a) * nodes + by * INTERPOLATION + b;
                    double w = wx[a] * wy[b];
                    for (int t = 0; t < 4; t++)
                        c[4 * node + t] += w * term[t];
                }
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 4, ok);
}

static PyObject *
fft_gather(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[5];
    Py_ssize_t boxes;
    if (!PyArg_ParseTuple(args, "OnOOOO", &objs[0], &boxes, &objs[1], &objs[2], &objs[3], &objs[4]))
        return NULL;
    Py_buffer v[5] = {{0}};
    static const Argument arguments[] = {
        {"embedding", "d", sizeof(double), 0}, {"cells", "i", sizeof(int), 0},
        {"weights", "d", sizeof(double), 0}, {"potentials", "d", sizeof(double), 0},
        {"gradient", "d", sizeof(double), 1},
    };
    int ok = take_all(objs, v, arguments, 5) == 0;
    Py_ssize_t n = 0, nodes = boxes * INTERPOLATION;
    if (ok) {
        n = v[0].len / (Py_ssize_t)(2 * sizeof(double));
        if (v[0].ndim != 2 || v[0].shape[1] != 2 || v[1].len / (Py_ssize_t)sizeof(int) != n
            || v[2].len / (Py_ssize_t)sizeof(double) != 2 * INTERPOLATION * n
            || v[3].len / (Py_ssize_t)sizeof(double) != 4 * nodes * nodes || v[4].len != v[0].len || boxes < 1) {
            PyErr_SetString(PyExc_ValueError, "embedding and gradient must be N x 2, cells N, weights N x 6, "
                                              "potentials nodes x nodes x 4 (nodes = 3 x boxes)");
            ok = 0;
        }
        const int *cells = v[1].buf;
        for (Py_ssize_t i = 0; ok && i < n; i++)
            ok = cells[i] >= 0 && cells[i] < boxes * boxes;
        if (!ok && !PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "cells must be box numbers (from fft_spread)");
    }
    double z = 0.0;
    if (ok) {
        const double *e = v[0].buf, *weights = v[2].buf, *u = v[3].buf;
        const int *cells = v[1].buf;
        double *g = v[4].buf;
        double *phi = malloc(sizeof(double) * 4 * (size_t)n);
        if (phi == NULL) {
            release_all(v, 5);
            return PyErr_NoMemory();
        }
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t bx = cells[i] / boxes, by = cells[i] % boxes;
            const double *wx = weights + 2 * INTERPOLATION * i, *wy = wx + INTERPOLATION;
            double sum[4] = {0.0, 0.0, 0.0, 0.0};
            for (int a = 0; a < INTERPOLATION; a++)
                for (int b = 0; b < INTERPOLATION; b++) {
                    Py_ssize_t node = (bx * INTERPOLATION + a) * nodes + by * INTERPOLATION + b;
                    double w = wx[a] * wy[b];
                    for (int t = 0; t < 4; t++)
                        sum[t] += w * u[4 * node + t];
                }
            double x = e[2 * i], y = e[2 * i + 1];
            z += (1.0 + x * x + y * y) * sum[0] - 2.0 * (x * sum[1] + y * sum[2]) + sum[3];
            memcpy(phi + 4 * i, sum, sizeof sum);
        }
        z -= (double)n;  /* each point's own kernel value, 1 */
        double scale = 1.0 / (z + DBL_EPSILON);
        for (Py_ssize_t i = 0; i < n; i++) {
            const double *f = phi + 4 * i;
            g[2 * i] -= (e[2 * i] * f[0] - f[1]) * scale;
            g[2 * i + 1] -= (e[2 * i + 1] * f[0] - f[2]) * scale;
        }
        Py_END_ALLOW_THREADS
        free(phi);
    }
    release_all(v, 5);
    return ok ? PyFloat_FromDouble(z) : NULL;
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

/* The distance pass computes every point's float32 squared distance to every point, in tiles that
 * stay in the cache: never the whole N x N matrix, whose writing and reading cost more than the
 * arithmetic. Distances are expanded, |x|^2 + |y|^2 - 2 x.y, as a matrix product would: one multiply
 * and one add per coordinate. The points are laid out in panels of PANEL points, one coordinate
 * after the other (-2 y, for the product); a few points' dot products with a panel are vectors of
 * sums held in registers while the coordinates go by, and TILE_ROWS points use each panel in turn
 * while it is in the L1 cache. Each sum is added in the same order in both versions below (one lane
 * per distance, no fused multiply-adds), so they give the same distances. */
#define PANEL 16
#define TILE_ROWS 32

typedef float floats8 __attribute__((vector_size(32)));
typedef float floats4 __attribute__((vector_size(16)));

/* tile[r, j] for r < TILE_ROWS, j < panel_count x PANEL: squared distance from point r0 + r to
 * point j, from ``points`` (rows r0 .. r0 + TILE_ROWS, padded), their squared norms and the panels
 * (padding points past N are zeros: their values are never looked at). This version: four points
 * at a time, a panel as two vectors of eight (AVX2's sixteen 256-bit registers: eight sums, two
 * panel vectors). */
#if defined(__x86_64__) && !defined(LATENTLAPSE_BASELINE_ONLY)
#define HAVE_WIDE_TILE 1
__attribute__((target("avx2"))) static void
tile_distances_wide(const float *panels, const float *panel_norms, Py_ssize_t panel_count, const float *points,
                    const float *norms, Py_ssize_t d, Py_ssize_t r0, float *tile)
{
    Py_ssize_t stride = panel_count * PANEL;
    for (Py_ssize_t q = 0; q < panel_count; q++) {
        const floats8 *panel = (const floats8 *)(panels + q * d * PANEL);
        floats8 y0, y1;
        memcpy(&y0, panel_norms + q * PANEL, sizeof y0);
        memcpy(&y1, panel_norms + q * PANEL + 8, sizeof y1);
        for (Py_ssize_t r = r0; r < r0 + TILE_ROWS; r += 4) {
            const float *p0 = points + r * d, *p1 = p0 + d, *p2 = p1 + d, *p3 = p2 + d;
            floats8 s00 = y0 + norms[r], s01 = y1 + norms[r], s10 = y0 + norms[r + 1], s11 = y1 + norms[r + 1],
                    s20 = y0 + norms[r + 2], s21 = y1 + norms[r + 2], s30 = y0 + norms[r + 3],
                    s31 = y1 + norms[r + 3];
            for (Py_ssize_t t = 0; t < d; t++) {
                floats8 c0 = panel[2 * t], c1 = panel[2 * t + 1];
                s00 += c0 * p0[t];
                s01 += c1 * p0[t];
                s10 += c0 * p1[t];
                s11 += c1 * p1[t];
                s20 += c0 * p2[t];
                s21 += c1 * p2[t];
                s30 += c0 * p3[t];
                s31 += c1 * p3[t];
            }
            float *out = tile + (r - r0) * stride + q * PANEL;
            memcpy(out, &s00, sizeof s00);
            memcpy(out + 8, &s01, sizeof s01);
            memcpy(out + stride, &s10, sizeof s10);
            memcpy(out + stride + 8, &s11, sizeof s11);
            memcpy(out + 2 * stride, &s20, sizeof s20);
            memcpy(out + 2 * stride + 8, &s21, sizeof s21);
            memcpy(out + 3 * stride, &s30, sizeof s30);
            memcpy(out + 3 * stride + 8, &s31, sizeof s31);
        }
    }
}
#endif

/* The same tile for the baseline (SSE2's sixteen 128-bit registers): two points at a time, a panel
 * as four vectors of four. Eight-wide vectors there would be split in two by the compiler and
 * their sixteen sums would not fit in the registers (15x slower, measured). */
static void
tile_distances_narrow(const float *panels, const float *panel_norms, Py_ssize_t panel_count, const float *points,
                      const float *norms, Py_ssize_t d, Py_ssize_t r0, float *tile)
{
    Py_ssize_t stride = panel_count * PANEL;
    for (Py_ssize_t q = 0; q < panel_count; q++) {
        const floats4 *panel = (const floats4 *)(panels + q * d * PANEL);
        floats4 y[4];
        memcpy(y, panel_norms + q * PANEL, sizeof y);
        for (Py_ssize_t r = r0; r < r0 + TILE_ROWS; r += 2) {
            const float *p0 = points + r * d, *p1 = p0 + d;
            floats4 s00 = y[0] + norms[r], s01 = y[1] + norms[r], s02 = y[2] + norms[r], s03 = y[3] + norms[r],
                    s10 = y[0] + norms[r + 1], s11 = y[1] + norms[r + 1], s12 = y[2] + norms[r + 1],
                    s13 = y[3] + norms[r + 1];
            for (Py_ssize_t t = 0; t < d; t++) {
                floats4 c0 = panel[4 * t], c1 = panel[4 * t + 1], c2 = panel[4 * t + 2], c3 = panel[4 * t + 3];
                s00 += c0 * p0[t];
                s01 += c1 * p0[t];
                s02 += c2 * p0[t];
                s03 += c3 * p0[t];
                s10 += c0 * p1[t];
                s11 += c1 * p1[t];
                s12 += c2 * p1[t];
                s13 += c3 * p1[t];
            }
            float *out = tile + (r - r0) * stride + q * PANEL;
            floats4 first[4] = {s00, s01, s02, s03}, second[4] = {s10, s11, s12, s13};
            memcpy(out, first, sizeof first);
            memcpy(out + stride, second, sizeof second);
        }
    }
}

/* The tile with the widest version this CPU runs. */
static void
tile_distances(const float *panels, const float *panel_norms, Py_ssize_t panel_count, const float *points,
               const float *norms, Py_ssize_t d, Py_ssize_t r0, float *tile)
{
#ifdef HAVE_WIDE_TILE
    if (__builtin_cpu_supports("avx2")) {
        tile_distances_wide(panels, panel_norms, panel_count, points, norms, d, r0, tile);
        return;
    }
#endif
    tile_distances_narrow(panels, panel_norms, panel_count, points, norms, d, r0, tile);
}

static PyObject *
select_nearest(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[7];
    Py_ssize_t k, loose;
    if (!PyArg_ParseTuple(args, "OOOOnnOOO", &objs[0], &objs[1], &objs[2], &objs[3], &k, &loose, &objs[4],
                          &objs[5], &objs[6]))
        return NULL;
    /* Either a limit per point or a guess of k neighbours per point (the other one None). */
    int guessed = objs[1] == Py_None;
    if (guessed == (objs[6] == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "give either limit or guess (the other None)");
        return NULL;
    }
    Py_buffer v[7] = {{0}};
    static const Argument arguments[] = {
        {"points", "f", sizeof(float), 0}, {"slack", "f", sizeof(float), 0}, {"X", "d", sizeof(double), 0},
        {"neighbours", "lq", 8, 1}, {"sq_dists", "d", sizeof(double), 1}, {"limit", "f", sizeof(float), 0},
        {"guess", "lq", 8, 0},
    };
    PyObject *ordered[7] = {objs[0], objs[2], objs[3], objs[4], objs[5], guessed ? objs[6] : objs[1], NULL};
    Argument chosen[6];
    memcpy(chosen, arguments, sizeof(Argument) * 5);
    chosen[5] = arguments[guessed ? 6 : 5];
    int ok = take_all(ordered, v, chosen, 6) == 0;
    Py_ssize_t n = 0, d = 0;
    if (ok) {
        const char *problem = NULL;
        if (v[2].ndim != 2 || v[0].ndim != 2)
            problem = "X and points must be 2-D";
        else {
            n = v[2].shape[0];
            d = v[2].shape[1];
            if (v[0].shape[0] != n || v[0].shape[1] != d)
                problem = "points must be X's shape (its float32 copy)";
            else if (v[1].len / (Py_ssize_t)sizeof(float) != n)
                problem = "slack must have a value per point";
            else if (!guessed && v[5].len / (Py_ssize_t)sizeof(float) != n)
                problem = "limit must have a value per point";
            else if (guessed && (v[5].ndim != 2 || v[5].shape[0] != n || v[5].shape[1] != k))
                problem = "guess must be N x k";
            else if (k < 1 || k >= n || loose < 1)
                problem = "k must be between 1 and N - 1, loose at least 1";
            else if (n > INT_MAX)
                problem = "too many points";
            else if (v[3].len / 8 != n * k || v[4].len / (Py_ssize_t)sizeof(double) != n * k)
                problem = "neighbours and sq_dists must be N x k";
        }
        if (problem == NULL && guessed) {
            const long long *g = v[5].buf;
            for (Py_ssize_t c = 0; c < n * k && problem == NULL; c++)
                if (g[c] < 0 || g[c] >= n)
                    problem = "guess must hold row numbers of X";
        }
        if (problem != NULL) {
            PyErr_SetString(PyExc_ValueError, problem);
            ok = 0;
        }
    }
    Py_ssize_t panel_count = (n + PANEL - 1) / PANEL, stride = panel_count * PANEL;
    Py_ssize_t padded_rows = (n + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS;
    int *candidates = NULL;
    float *scratch = NULL, *panels = NULL, *panel_norms = NULL, *rows = NULL, *norms = NULL, *tile = NULL;
    if (ok) {
        candidates = malloc(sizeof(int) * (size_t)n);
        scratch = malloc(sizeof(float) * (size_t)k);
        panels = aligned_alloc(32, sizeof(float) * (size_t)(stride * d));  /* a multiple of 64 bytes */
        panel_norms = calloc((size_t)stride, sizeof(float));
        rows = calloc((size_t)(padded_rows * d), sizeof(float));
        norms = calloc((size_t)padded_rows, sizeof(float));
        tile = malloc(sizeof(float) * (size_t)(TILE_ROWS * stride));
        if (candidates == NULL || scratch == NULL || panels == NULL || panel_norms == NULL || rows == NULL
            || norms == NULL || tile == NULL) {
            PyErr_NoMemory();
            ok = 0;
        }
    }
    Py_ssize_t redone = 0;
    if (ok) {
        const float *points = v[0].buf, *slack = v[1].buf;
        const float *limit = guessed ? NULL : v[5].buf;
        const long long *guess = guessed ? v[5].buf : NULL;
        const double *X = v[2].buf;
        long long *index = v[3].buf;
        double *dist = v[4].buf;
        Py_BEGIN_ALLOW_THREADS
        memset(panels, 0, sizeof(float) * (size_t)(stride * d));
        memcpy(rows, points, sizeof(float) * (size_t)(n * d));
        for (Py_ssize_t j = 0; j < n; j++) {
            float sq = 0.0f;
            for (Py_ssize_t t = 0; t < d; t++) {
                panels[(j / PANEL) * d * PANEL + t * PANEL + j % PANEL] = -2.0f * points[j * d + t];
                sq += points[j * d + t] * points[j * d + t];
            }
            panel_norms[j] = norms[j] = sq;
        }
        for (Py_ssize_t r0 = 0; r0 < n; r0 += TILE_ROWS) {
            Py_ssize_t tile_rows = n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS;
            tile_distances(panels, panel_norms, panel_count, rows, norms, d, r0, tile);
            for (Py_ssize_t r = 0; r < tile_rows; r++) {
                Py_ssize_t i = r0 + r;
                const float *row = tile + r * stride;
                float radius;
                if (guessed) {
                    /* Each guessed neighbour's float32 distance is within slack of its true one, so
                     * the true k-th distance is at most their largest + slack, and every point
                     * that near has a float32 distance at most that + slack. */
                    float far = 0.0f;
                    for (Py_ssize_t a = 0; a < k; a++)
                        far = row[guess[i * k + a]] > far ? row[guess[i * k + a]] : far;
                    double wanted = (double)far + 2.0 * (double)slack[i];
                    radius = (float)wanted;
                    if ((double)radius < wanted)
                        radius = nextafterf(radius, INFINITY);
                } else
                    radius = limit[i];
                Py_ssize_t count = inside(row, n, i, radius, loose * k, candidates);
                if (count < k || count > loose * k) {
                    /* A poor guess (the latents moved far since it was made), or one naming a point
                     * twice: this row's radius becomes its own k-th distance. */
                    float own = kth_smallest(row, n, i, k, scratch) + slack[i];
                    count = inside(row, n, i, own, n, candidates);
                    redone++;
                }
                rank(X, d, i, candidates, count, k, index + i * k, dist + i * k);
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(candidates);
    free(scratch);
    free(panels);
    free(panel_norms);
    free(rows);
    free(norms);
    free(tile);
    release_all(v, 6);
    return ok ? PyLong_FromSsize_t(redone) : NULL;
}

/* ---- trustworthiness ------------------------------------------------------------------------ */

/* For each pair p: 1 + how many points j are strictly nearer to point rows[local[p]] than cols[p]
 * is, by squared distances (sq_norms[i] - 2 dots[r, j]) + sq_norms[j] in that order, as NumPy
 * computes the expanded formula; the point itself is never nearer (sklearn gives it distance inf). */
/* How many j have (sq_i - 2 row[j]) + sq[j] < reference. */
WIDE_CLONES static Py_ssize_t
count_below(const double *row, const double *sq, Py_ssize_t n, double sq_i, double reference)
{
    Py_ssize_t nearer = 0;
#pragma omp simd reduction(+ : nearer)
    for (Py_ssize_t j = 0; j < n; j++)
        nearer += ((sq_i - 2.0 * row[j]) + sq[j]) < reference;
    return nearer;
}

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
            double reference = (sq[i] - 2.0 * row[cols[p]]) + sq[cols[p]];
            Py_ssize_t nearer = count_below(row, sq, n, sq[i], reference);
            nearer -= ((sq[i] - 2.0 * row[i]) + sq[i]) < reference; /* the point itself */
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
    {"symmetrize", symmetrize, METH_VARARGS,
     "symmetrize(neighbours, conditional) -> (indptr, indices, data)\n\n"
     "C + C^T in CSR (bytearrays of int32, int32, float64), where row i of C holds conditional[i]\n"
     "(N x k float64) at the columns neighbours[i] (N x k int64): each row's columns in order, zero\n"
     "sums left out, a pair named by both rows summed as c_ij + c_ji."},
    {"fft_spread", fft_spread, METH_VARARGS,
     "fft_spread(embedding, lo, width, boxes, cells, weights, coefficients)\n\n"
     "The first step of the FFT-interpolated repulsion: the (N, 2) embedding's points in boxes of the\n"
     "given width from (lo, lo), boxes x boxes of them; each point's box into cells (int32) and its\n"
     "Lagrange weights into weights (N x 6); the terms 1, x, y, x^2 + y^2 spread onto the nodes\n"
     "into coefficients (nodes x nodes x 4 float64, nodes = 3 x boxes, overwritten)."},
    {"fft_gather", fft_gather, METH_VARARGS,
     "fft_gather(embedding, boxes, cells, weights, potentials, gradient) -> Z\n\n"
     "The last step: each point's four potentials read back from the nodes (as fft_spread wrote\n"
     "cells and weights), Z, and the repulsion divided by Z subtracted from gradient (N x 2)."},
    {"select_nearest", select_nearest, METH_VARARGS,
     "select_nearest(points, limit, slack, X, k, loose, neighbours, sq_dists, guess) -> int\n\n"
     "For each point i: the points j != i whose float32 squared distance (from points, X's float32\n"
     "copy) is <= limit[i], or with limit None, <= the largest to the k points guess[i] (int64)\n"
     "+ 2 x slack[i] (or, if fewer than k or more than loose x k, within the row's own k-th value\n"
     "+ slack[i]), ranked by their direct float64 squared distance in X, ties by index; the k\n"
     "nearest go to row i of neighbours (int64) and sq_dists. Returns how many rows needed their\n"
     "own k-th value."},
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
