/* pold_dash: the dashboard page, policy/pold_dash.html, embedded in the binary at build
 * time (.incbin, path relative to the top of the tree where make runs) so that
 * echos-policy ships it whole and the browser fetches nothing else. Owns no memory. */
#include <stddef.h>

#include "pold.h"

__asm__(".section .rodata\n"
        ".global pold_dash_html\n"
        ".type pold_dash_html, @object\n"
        ".balign 16\n"
        "pold_dash_html:\n"
        ".incbin \"policy/pold_dash.html\"\n"
        ".global pold_dash_html_end\n"
        "pold_dash_html_end:\n"
        ".byte 0\n"
        ".size pold_dash_html, . - pold_dash_html\n"
        ".previous\n");

extern const char pold_dash_html[];
extern const char pold_dash_html_end[];

const char *pold_dash_page(size_t *len)
{
	*len = (size_t)(pold_dash_html_end - pold_dash_html);
	return pold_dash_html;
}
