/* main.c - the fedl command (being written). */
#include <stdio.h>

#include "fedl/core.h"

int main(void)
{
    printf("fedl %s\n", fedl_version());
    return 0;
}
