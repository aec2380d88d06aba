/* fedl/fedl.h - the whole public API of fedl. */
#ifndef FEDL_FEDL_H
#define FEDL_FEDL_H

#include "fedl/core.h"
#include "fedl/mem.h"
#include "fedl/nn.h"
#include "fedl/data.h"
#include "fedl/csv.h"
#include "fedl/ckpt.h"
#include "fedl/monitor.h"
#include "fedl/train.h"
#include "fedl/fl.h"

#endif
