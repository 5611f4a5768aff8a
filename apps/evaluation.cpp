#include "apps/evaluation.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/ops.h"
#include "data/batch.h"

namespace sieve {
namespace {

// Evaluation forwards this many examples at a time: bounded memory for any data-set size.
constexpr int64_t kEvalChunk = 500;

}  // namespace

ClassifierEvaluation evaluate_classifier(Module& model, const Dataset& d, bool details) {
  SIEVE_CHECK(d.size() > 0, "evaluate: the data set is empty");
  NoGradGuard no_grad;
  ClassifierEvaluation r;
  r.examples = d.size();
  if (details) {
    r.num_classes = d.num_classes;
    r.confusion.assign(static_cast<size_t>(d.num_classes) * static_cast<size_t>(d.num_classes), 0);
    r.predictions.reserve(static_cast<size_t>(d.size()));
    r.losses.reserve(static_cast<size_t>(d.size()));
  }
  std::vector<int32_t> arange(static_cast<size_t>(std::min(kEvalChunk, d.size())));
  for (size_t i = 0; i < arange.size(); ++i) arange[i] = static_cast<int32_t>(i);
  const Tensor rows = Tensor::from_vector(arange, {static_cast<int64_t>(arange.size())}, d.device());
  Tensor total = Tensor::zeros({}, DType::F32, d.device());
  int64_t correct = 0;
  for (int64_t begin = 0; begin < d.size(); begin += kEvalChunk) {
    const int64_t end = std::min(d.size(), begin + kEvalChunk);
    // A chunk is a view of consecutive rows, gathered by 0..n-1 so that normalisation is the training one.
    const Dataset chunk = d.rows(begin, end);
    const Tensor logits = model.forward(gather_batch(chunk, rows.rows(0, end - begin)));
    const Tensor losses = cross_entropy(logits, chunk.labels);
    add_(total, sum(losses));
    const Tensor predicted = argmax_rows(logits);
    if (!details) {
      correct += count_equal(predicted, chunk.labels);
      continue;
    }
    const std::vector<int32_t> p = predicted.to(Device::cpu()).to_vector<int32_t>();
    const std::vector<int32_t> y = chunk.labels.to(Device::cpu()).to_vector<int32_t>();
    const std::vector<float> l = losses.to(Device::cpu()).to_vector<float>();
    for (size_t i = 0; i < p.size(); ++i) {
      correct += p[i] == y[i];
      r.confusion[static_cast<size_t>(y[i]) * static_cast<size_t>(d.num_classes) + static_cast<size_t>(p[i])]++;
    }
    r.predictions.insert(r.predictions.end(), p.begin(), p.end());
    r.losses.insert(r.losses.end(), l.begin(), l.end());
  }
  r.loss = total.item() / static_cast<double>(d.size());
  r.accuracy = static_cast<double>(correct) / static_cast<double>(d.size());
  return r;
}

}  // namespace sieve
