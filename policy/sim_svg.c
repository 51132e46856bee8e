/* sim_svg: a small writer of line charts as standalone SVG files (axes, ticks, grid,
 * legend), so the simulator's plots open in any browser without a plotting library.
 * Owns nothing past the call; writes only the file it is given. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ec_err.h"
#include "sim.h"

#define W 760
#define H 460
#define ML 70  /* margins */
#define MR 170
#define MT 40
#define MB 55

static const char *const colors[] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
};

static void svg_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about 5 ticks. */
static double nice_step(double span)
{
	double raw = span / 5, p, m;

	if (!(raw > 0))
		return 1;
	p = pow(10, floor(log10(raw)));
	m = raw / p;
	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

int sim_svg_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const double *x, size_t n, const struct sim_series *s, size_t ns,
                  double ymin, double ymax)
{
	FILE *f = fopen(path, "w");
	double xmin = n ? x[0] : 0, xmax = n ? x[0] : 1, step;
	int pw = W - ML - MR, ph = H - MT - MB;

	if (!f)
		return EC_EIO;
	for (size_t i = 0; i < n; i++) {
		xmin = fmin(xmin, x[i]);
		xmax = fmax(xmax, x[i]);
	}
	if (xmax <= xmin)
		xmax = xmin + 1;
	if (ymax <= ymin)
		ymax = ymin + 1;
#define PX(v) (ML + ((v) - xmin) / (xmax - xmin) * pw)
#define PY(v) (MT + ph - ((v) - ymin) / (ymax - ymin) * ph)
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H, W, H, W, H);
	fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", ML);
	svg_text(f, title);
	fputs("</text>\n", f);

	step = nice_step(ymax - ymin);
	for (double v = ceil(ymin / step) * step; v <= ymax + step * 1e-9; v += step) {
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
		        ML, PY(v), ML + pw, PY(v));
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ML - 6,
		        PY(v) + 4, fabs(v) < step * 1e-9 ? 0.0 : v);
	}
	step = nice_step(xmax - xmin);
	for (double v = ceil(xmin / step) * step; v <= xmax + step * 1e-9; v += step) {
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>\n",
		        PX(v), MT, PX(v), MT + ph);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", PX(v),
		        MT + ph + 18, fabs(v) < step * 1e-9 ? 0.0 : v);
	}
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
	        "stroke=\"#333\"/>\n", ML, MT, pw, ph);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", ML + pw / 2, H - 12);
	svg_text(f, xlabel);
	fprintf(f, "</text>\n<text transform=\"translate(18,%d) rotate(-90)\" "
	        "text-anchor=\"middle\">", MT + ph / 2);
	svg_text(f, ylabel);
	fputs("</text>\n", f);

	for (size_t k = 0; k < ns; k++) {
		const char *col = colors[k % (sizeof colors / sizeof colors[0])];
		int ly = MT + 10 + (int)k * 20;

		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
		for (size_t i = 0; i < n; i++) {
			double y = s[k].y[i];

			if (isfinite(y))
				fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(x[i]),
				        PY(fmin(fmax(y, ymin), ymax)));
		}
		fputs("\"/>\n", f);
		if (n <= 12)
			for (size_t i = 0; i < n; i++)
				if (isfinite(s[k].y[i]))
					fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
					        PX(x[i]), PY(fmin(fmax(s[k].y[i], ymin), ymax)), col);
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
		        "stroke-width=\"3\"/>\n<text x=\"%d\" y=\"%d\">", ML + pw + 12, ly,
		        ML + pw + 36, ly, col, ML + pw + 42, ly + 4);
		svg_text(f, s[k].name);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
#undef PX
#undef PY
	if (fclose(f) != 0)
		return EC_EIO;
	return 0;
}
