/* depotctl: placeholder entry point until the client lands (issue 8). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "depotctl: not built yet\n");
    return 1;
}
