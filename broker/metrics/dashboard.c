/*
 * GET /: the dashboard, broker/metrics/dashboard.html embedded in the binary (the box is
 * offline: no CDN, no files to install beside the binary). The assembler's .incbin pulls the
 * file in at build time, so the page stays an ordinary HTML file to edit and review; the
 * Makefile makes dashboard.o depend on it. The page only reads GET /api/overview.
 */
#include <stddef.h>

#include "broker/metrics/metrics.h"

/* Path relative to the repository root, where make runs the compiler. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "kb_dashboard_html:\n"
        ".incbin \"broker/metrics/dashboard.html\"\n"
        "kb_dashboard_html_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char kb_dashboard_html[] __asm__("kb_dashboard_html");
extern const char kb_dashboard_html_end[] __asm__("kb_dashboard_html_end");

int kb_metrics_dashboard(kb_http_req_t *req, void *ud)
{
    (void)ud;
    size_t len = (size_t)(kb_dashboard_html_end - kb_dashboard_html);
    kb_http_add_header(req, "Cache-Control", "no-cache");
    kb_http_add_header(req, "X-Content-Type-Options", "nosniff");
    kb_http_respond(req, 200, "text/html; charset=utf-8", kb_dashboard_html, len);
    return KB_DONE;
}
