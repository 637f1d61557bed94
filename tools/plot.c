/*
 * plot.c - `uzswap bench --plot FILE.svg`: pick a codec at a glance.
 *
 * Owns: one SVG with two panels, compression ratio (up) against store
 * MB/s and against load MB/s (right, log scale), one labelled point per
 * codec and level, from the runs with the first thread count asked for.
 * Up and to the right is better. Plain SVG 1.1, no scripts, no fonts
 * beyond sans-serif.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tool.h"

#define W 1000
#define H 480
#define PW 400		/* panel plot area */
#define PH 360
#define TOP 60

static const char *const colors[] = { "#1f77b4", "#d62728", "#2ca02c",
	"#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf" };

struct axes {
	double xlo, xhi, ylo, yhi;	/* x: log10 of MB/s */
	int left;			/* panel's left edge in px */
};

static double px_x(const struct axes *a, double mbps)
{
	return a->left + (log10(mbps) - a->xlo) / (a->xhi - a->xlo) * PW;
}

static double px_y(const struct axes *a, double ratio)
{
	return TOP + PH - (ratio - a->ylo) / (a->yhi - a->ylo) * PH;
}

static int color_of(const struct bench_result *r, int n, int i)
{
	const char *const *names = uzswap_compressors();

	(void)n;
	for (int k = 0; names[k]; k++)
		if (!strcmp(names[k], r[i].cfg.codec.name))
			return k % 8;
	return 0;
}

static void x_ticks(FILE *f, const struct axes *a)
{
	static const int steps[] = { 1, 2, 5 };

	for (int e = (int)floor(a->xlo); e <= (int)a->xhi; e++) {
		for (int s = 0; s < 3; s++) {
			double v = steps[s] * pow(10, e), x;

			if (log10(v) < a->xlo - 1e-9)
				continue;
			if (log10(v) > a->xhi + 1e-9)
				break;
			x = px_x(a, v);
			fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' "
				"stroke='#ddd'/>\n<text x='%.1f' y='%d' "
				"text-anchor='middle'>%g</text>\n", x, TOP, x,
				TOP + PH, x, TOP + PH + 16, v);
		}
	}
}

static void y_ticks(FILE *f, const struct axes *a)
{
	double step = a->yhi - a->ylo > 4 ? 1 : 0.5;

	for (double v = ceil(a->ylo / step) * step; v <= a->yhi + 1e-9;
	     v += step) {
		double y = px_y(a, v);

		fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' "
			"stroke='#ddd'/>\n<text x='%d' y='%.1f' "
			"text-anchor='end'>%g</text>\n", a->left, y,
			a->left + PW, y, a->left - 6, y + 4, v);
	}
}

/* Label boxes placed so far in a panel, to keep labels apart. */
struct labels {
	double x[64], y[64];
	int n;
};

static bool overlaps(const struct labels *l, double x, double y)
{
	for (int i = 0; i < l->n; i++)
		if (fabs(l->x[i] - x) < 70 && fabs(l->y[i] - y) < 13)
			return true;
	return false;
}

/* Right above, right below, left above, left below the point. */
static void place(struct labels *l, double px, double py, double *x,
		  double *y, const char **anchor)
{
	static const double dx[] = { 7, 7, -7, -7 }, dy[] = { -6, 15, -6, 15 };
	int k;

	for (k = 0; k < 3; k++)
		if (!overlaps(l, px + dx[k] + (dx[k] < 0 ? -35 : 35),
			      py + dy[k]))
			break;
	*x = px + dx[k];
	*y = py + dy[k];
	*anchor = dx[k] < 0 ? "end" : "start";
	if (l->n < 64) {
		l->x[l->n] = *x + (dx[k] < 0 ? -35 : 35);
		l->y[l->n++] = *y;
	}
}

static void point(FILE *f, struct labels *l, double x, double y,
		  const struct bench_result *r, int color)
{
	double lx, ly;
	const char *anchor;
	char name[64];

	codec_label(&r->cfg.codec, name, sizeof(name));
	place(l, x, y, &lx, &ly, &anchor);
	fprintf(f, "<circle cx='%.1f' cy='%.1f' r='5' fill='%s'/>\n"
		"<text x='%.1f' y='%.1f' text-anchor='%s'>%s</text>\n", x, y,
		colors[color], lx, ly, anchor, name);
}

static void panel(FILE *f, const struct axes *a, const char *title,
		  const struct bench_result *r, int n, bool load)
{
	fprintf(f, "<text x='%d' y='%d' text-anchor='middle' "
		"font-weight='bold'>%s</text>\n", a->left + PW / 2, TOP - 12,
		title);
	x_ticks(f, a);
	y_ticks(f, a);
	fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' "
		"stroke='#444'/>\n", a->left, TOP, PW, PH);
	fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>%s MB/s (log)"
		"</text>\n", a->left + PW / 2, TOP + PH + 36,
		load ? "load" : "store");
	fprintf(f, "<text transform='translate(%d,%d) rotate(-90)' "
		"text-anchor='middle'>compression ratio</text>\n",
		a->left - 40, TOP + PH / 2);
	struct labels l = { .n = 0 };

	for (int i = 0; i < n; i++)
		point(f, &l, px_x(a, load ? r[i].load_mbps : r[i].store_mbps),
		      px_y(a, r[i].ratio), &r[i], color_of(r, n, i));
}

/* Runs with the first thread count and a finite ratio and speed. */
static int usable(const struct bench_result *r, int n,
		  const struct bench_result **out)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (r[i].cfg.threads == r[0].cfg.threads &&
		    isfinite(r[i].ratio) && r[i].store_mbps > 0 &&
		    r[i].load_mbps > 0)
			out[k++] = &r[i];
	return k;
}

/* The 1-2-5 step at or below (up: at or above) v. */
static double nice(double v, bool up)
{
	double e = pow(10, floor(log10(v))), m = v / e;

	if (up)
		return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e;
	return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * e;
}

static void bounds(const struct bench_result *const *u, int k, bool load,
		   struct axes *a)
{
	double lo = INFINITY, hi = 0, ymax = 1;

	for (int i = 0; i < k; i++) {
		double v = load ? u[i]->load_mbps : u[i]->store_mbps;

		lo = fmin(lo, v);
		hi = fmax(hi, v);
		ymax = fmax(ymax, u[i]->ratio);
	}
	a->xlo = log10(nice(lo, false));
	a->xhi = log10(nice(hi * 1.3, true));
	a->ylo = 1;
	a->yhi = ceil(ymax * 1.1 * 2) / 2;
}

int plot_svg(const char *path, const struct bench_result *r, int n,
	     char *err, size_t errlen)
{
	const struct bench_result *u[64];
	struct bench_result pts[64];
	struct axes st = { .left = 70 }, ld = { .left = 70 + PW + 100 };
	int k = usable(r, n < 64 ? n : 64, u);
	FILE *f;

	if (!k) {
		snprintf(err, errlen, "--plot %s: no run to plot", path);
		return EXIT_FAIL;
	}
	for (int i = 0; i < k; i++)
		pts[i] = *u[i];
	bounds(u, k, false, &st);
	bounds(u, k, true, &ld);
	f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "--plot %s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns="
		"'http://www.w3.org/2000/svg' width='%d' height='%d' "
		"font-family='sans-serif' font-size='12'>\n<rect width='%d' "
		"height='%d' fill='white'/>\n<text x='%d' y='22' "
		"text-anchor='middle' font-size='15'>uzswap %s: compression "
		"ratio against speed, %u thread%s (up and right is better)"
		"</text>\n", W, H, W, H, W / 2, UZSWAP_VERSION_STRING,
		pts[0].cfg.threads, pts[0].cfg.threads > 1 ? "s" : "");
	panel(f, &st, "ratio vs store", pts, k, false);
	panel(f, &ld, "ratio vs load", pts, k, true);
	fputs("</svg>\n", f);
	if (fclose(f)) {
		snprintf(err, errlen, "--plot %s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	return 0;
}
