// Every operation of the engine, for a user's training loop.
#pragma once

#include "core/autograd.h"
#include "core/ops/batch_norm.h"
#include "core/ops/conv2d.h"
#include "core/ops/dropout.h"
#include "core/ops/elementwise.h"
#include "core/ops/gather.h"
#include "core/ops/linear.h"
#include "core/ops/lstm.h"
#include "core/ops/pool.h"
#include "core/ops/precision.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "core/random.h"
#include "core/tensor.h"
