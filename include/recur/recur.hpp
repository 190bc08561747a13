#pragma once
// Everything public in recur.
#include "recur/cell.hpp"
#include "recur/error.hpp"
#include "recur/model_file.hpp"
#include "recur/npy.hpp"
#include "recur/rnn.hpp"
#include "recur/safetensors.hpp"
#include "recur/stream.hpp"
#include "recur/tensor.hpp"
