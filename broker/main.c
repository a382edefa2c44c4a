/* depot: placeholder entry point until the broker lands (issue 4). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "depot: broker not built yet\n");
    return 1;
}
