#include "apps/trainer.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "apps/evaluation.h"
#include "apps/text_file.h"
#include "core/checkpoint.h"
#include "core/cuda_graph.h"
#include "core/ops.h"
#include "core/ops/nonfinite.h"
#include "core/ops/precision.h"
#include "data/batch.h"
#include "data/sequence.h"
#include "layers/models.h"
#include "layers/module_state.h"
#include "optim/clip.h"
#include "optim/optimizer_state.h"
#include "sampling/selectors.h"

namespace sieve {
namespace {

using Clock = std::chrono::steady_clock;

// On a GPU the divergence flag is read this often besides at evaluations and checkpoints (Note [divergence]).
constexpr int64_t kDivergenceCheckEvery = 200;

// Independent Philox streams of one run's seed (Note [one seed]): the same seed gives every sampler the same
// initial model and the same training subset for evaluation, so runs differ only by their selection.
enum RunStream : uint64_t {
  kRunInitStream = 1,
  kRunSelectorStream = 2,
  kRunSubsetStream = 3,
  kRunAugmentStream = 4,
  kRunPermutationStream = 5,
  kRunDiagnosticsStream = 6,
};

// The permutation of --sequence pixels --permute: a function of the run's seed (Note [sequence view]).
uint64_t permutation_seed(const TrainOptions& o) { return Generator(o.seed).fork(kRunPermutationStream).seed(); }

// The sequence view as checkpoints record it: "none", "pixels" or "pixels-permuted <permutation seed>", so that a
// resume with another --seed cannot continue on other sequences.
std::string describe_sequence(const TrainOptions& o) {
  if (parse_sequence_view(o.sequence) == SequenceView::None) return "none";
  return o.permute ? "pixels-permuted " + std::to_string(permutation_seed(o)) : "pixels";
}

std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& o, std::vector<Tensor> parameters) {
  if (o.optimizer == "sgd") return std::make_unique<Sgd>(std::move(parameters), o.sgd);
  if (o.optimizer == "adam" || o.optimizer == "adamw") {
    AdamOptions adam = o.adam;
    adam.decoupled = o.optimizer == "adamw";
    return std::make_unique<Adam>(std::move(parameters), adam);
  }
  SIEVE_FAIL("unknown optimizer \"", o.optimizer, "\"; expected sgd, adam or adamw");
}

// Rows [begin, begin + count) of rank `rank` when n rows are split over `world` ranks as evenly as possible, the
// first n % world ranks taking one more (Note [data-parallel selection]).
struct Part {
  int64_t begin = 0;
  int64_t count = 0;
};
Part part_of(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  return {rank * base + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

}  // namespace

std::string to_json_line(const EvalRecord& r) {
  // Non-finite numbers (a diverged run) are written as null: JSON has no NaN.
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"sampler", r.sampler},
                      {"step", r.step},
                      {"time_s", number(r.time_s)},
                      {"train_loss", number(r.train_loss)},
                      {"test_loss", number(r.test_loss)},
                      {"test_accuracy", number(r.test_accuracy)},
                      {"tau", r.tau ? number(*r.tau) : nlohmann::json(nullptr)},
                      {"importance_on", r.importance_on},
                      {"importance_fraction", number(r.importance_fraction)},
                      {"lr", number(r.lr)},
                      {"examples", r.examples},
                      {"scored", r.scored},
                      {"selection_s", number(r.selection_s)},
                      {"epochs", number(r.epochs)}};
  nlohmann::json stats = nlohmann::json::object();
  for (const auto& [key, value] : r.selector_stats) stats[key] = number(value);
  j["selector"] = stats;
  if (r.final) j["final"] = true;
  if (r.diverged) {
    j["diverged"] = true;
    j["diverged_step"] = r.diverged_step;
    j["diverged_loss"] = describe_value(r.diverged_loss);
  }
  if (r.interrupted) {
    j["interrupted"] = true;
    j["signal"] = r.signal;
  }
  return j.dump();
}

std::string diagnostics_json_line(const std::string& sampler, int64_t step, double time_s, const ScoreDiagnostics& d) {
  return nlohmann::json{{"sampler", sampler}, {"step", step}, {"time_s", time_s}, {"score_diagnostics", d}}.dump();
}

std::string describe_value(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return nlohmann::json(v).dump();
}

std::string divergence_message(const EvalRecord& r) {
  return r.sampler + " diverged at step " + std::to_string(r.diverged_step) + ": training loss is " +
         describe_value(r.diverged_loss);
}

Trainer::Trainer(const TrainOptions& options, const DataSplits& data, Device device,
                 std::shared_ptr<Communicator> comm)
    : options_(options), data_(data), device_(device), comm_(comm ? std::move(comm) : local_communicator()) {
  rank_ = comm_->rank();
  world_ = comm_->size();
  // Any communicator but the local one takes the data-parallel path, at one process too: a single GPU with NCCL
  // runs the very code a multi-GPU run does.
  distributed_ = comm_->backend() != "local";
  SIEVE_CHECK(options.selection_mode == "global" || options.selection_mode == "local",
              "--selection must be global or local, found '", options.selection_mode, "'");
  local_selection_ = options.selection_mode == "local" && distributed_;
  SIEVE_CHECK(!local_selection_ || options.dump_selection.empty(),
              "--dump-selection is not supported with --selection local in a run of several processes (each rank "
              "selects on its own shard); use --selection global");
  SIEVE_CHECK(comm_->backend() == "local" || comm_->device() == device, "Trainer: training on ", to_string(device),
              " with a ", comm_->backend(), " communicator of ", to_string(comm_->device()));
  SIEVE_CHECK(options.iterations > 0 || options.time_budget_s > 0 || options.example_budget > 0,
              "give a length for the run: --iterations N, --time-budget SECONDS or --example-budget N");
  SIEVE_CHECK(options.iterations >= 0 && options.time_budget_s >= 0 && options.example_budget >= 0,
              "--iterations, --time-budget and --example-budget must be >= 0");
  SIEVE_CHECK(options.eval_every >= 0, "--eval-every must be >= 0");
  SIEVE_CHECK(options.train_eval_size > 0 && options.test_eval_size >= 0,
              "--train-eval-size must be > 0 and --test-eval-size >= 0");
  SIEVE_CHECK(data.train.size() > 0 && data.test.size() > 0, "the data set is empty");
  SIEVE_CHECK(data.train.device() == device, "Trainer: data on ", to_string(data.train.device()), ", training on ",
              to_string(device));
  SIEVE_CHECK(std::isfinite(options.clip_grad_norm) && options.clip_grad_norm >= 0,
              "--clip-grad-norm must be finite and >= 0 (0: off), found ", options.clip_grad_norm);
  const SequenceView view = parse_sequence_view(options.sequence);
  SIEVE_CHECK(!options.permute || view != SequenceView::None, "--permute reorders a sequence view: give --sequence "
              "pixels with it");
  SIEVE_CHECK(!options.augment || view == SequenceView::None, "--augment crops and flips images; it does not apply to "
              "--sequence ", options.sequence);

  SIEVE_CHECK(options.score_precision.empty() || options.score_precision == "f32" ||
                  options.score_precision == "bf16",
              "--score-precision must be f32 or bf16, found '", options.score_precision, "'");
  set_allow_tf32(options.tf32);
  set_allow_winograd(options.winograd);
  set_conv_benchmark(options.cudnn_benchmark);
  set_matmul_precision(parse_matmul_precision(options.mixed_precision));
  const Generator root(options.seed);
  // Note [sequence view]: built once per run on the device, test split with the training split's order; the
  // permutation depends on the run's seed only, so every sampler of one seed sees the same sequences.
  const std::vector<int32_t> order =
      view == SequenceView::Pixels && options.permute
          ? pixel_permutation(data.train.height() * data.train.width(), permutation_seed(options))
          : std::vector<int32_t>{};
  description_ = DataDescription::of(data.train, options.sequence, order);
  if (view == SequenceView::Pixels) {
    data_.train = pixel_sequence(data.train, order);
    data_.test = pixel_sequence(data.test, order);
  }
  augment_gen_ = root.fork(kRunAugmentStream);
  diagnostics_gen_ = root.fork(kRunDiagnosticsStream);
  SIEVE_CHECK(options.diagnose_scores_every >= 0, "--diagnose-scores must be >= 0 (0: off), found ",
              options.diagnose_scores_every);
  SIEVE_CHECK(options.diagnose_scores_every == 0 || options.selection.presample >= 2,
              "--diagnose-scores needs --presample >= 2");
  Generator init = root.fork(kRunInitStream);
  const Shape sample{data_.train.channels(), data_.train.height(), data_.train.width()};
  model_ = make_model(options.model, sample, data_.train.num_classes, init, device);

  // With global selection one selector of batch P b and pre-sample P B runs on every rank from the same seed; with
  // local selection each rank's selector has b and B and a seed of its own, rank 0 keeping the single-process one
  // (Note [data-parallel selection]).
  SelectorOptions selection = options.selection;
  selection.seed = root.fork(kRunSelectorStream).seed();
  if (local_selection_) {
    if (rank_ > 0) selection.seed = Generator(selection.seed).fork(static_cast<uint64_t>(rank_)).seed();
  } else {
    selection.batch *= world_;
    selection.presample *= world_;
  }
  selector_ = make_selector(options.sampler, selection);

  optimizer_ = make_optimizer(options, model_->parameters());
  if (options.cuda_graphs) {  // Note [captured steps]
    SIEVE_CHECK(device.is_cuda(), "--cuda-graphs captures GPU work; this run is on ", to_string(device));
    SIEVE_CHECK(!distributed_, "--cuda-graphs runs in one process (a data-parallel step's collectives are not "
                "captured)");
    SIEVE_CHECK(optimizer_->capturable(), "--cuda-graphs needs --optimizer sgd (", optimizer_->name(),
                " keeps its step counts on the host)");
    lr_cell_ = Tensor::zeros({}, DType::F32, device);
    augment_cell_ = Tensor::zeros({}, DType::I64, device);
  }
  schedule_ = make_schedule(options.schedule, optimizer_->lr(), options.schedule == "time" || options.schedule == "step"
                                                                  ? options.milestones
                                                                  : std::vector<double>{},
                            options.gamma, RunLength{planned_steps(), options.time_budget_s});

  Generator subset = root.fork(kRunSubsetStream);
  const int64_t n = std::min(options.train_eval_size, data_.train.size());
  train_subset_ = data_.train.subset(randint({n}, data_.train.size(), subset, device));
  test_eval_ = data_.test;
  if (options.test_eval_size > 0 && options.test_eval_size < data_.test.size())
    test_eval_ = data_.test.rows(0, options.test_eval_size);

  diverged_step_ = Tensor::full({}, -1.0, DType::I64, device);
  diverged_loss_ = Tensor::full({}, 0.0, DType::F32, device);

  context_.labels = data_.train.labels;
  context_.dataset_size = data_.train.size();
  context_.device = device;
  // Note [scoring mode] (sampling/importance.h): candidates are scored in evaluation mode, without gradients,
  // on their un-augmented images; with --augment the chosen examples are then trained on a random view. (The
  // reference code scores the augmented view it trains on; keying the augmentation by example and step would
  // match it and is left for when it is measured to matter.)
  score_precision_ = parse_matmul_precision(options.score_precision);
  context_.logits = [this](const Tensor& indices) { return scoring_logits(indices); };
  if (distributed_ && !local_selection_)
    context_.logits = [this](const Tensor& indices) { return global_logits(indices); };
  // --dump-selection: how often, and at what weight, each example was trained (a kernel each per step).
  if (!options.dump_selection.empty()) {
    trained_counts_ = Tensor::zeros({data_.train.size()}, DType::I32, device);
    last_weights_ = Tensor::full({data_.train.size()}, std::numeric_limits<double>::quiet_NaN(), DType::F32, device);
  }
  // CREST (sampling/crest.h) probes the loss of its coresets: the weighted mean cross-entropy and its gradient in
  // evaluation mode (as the scoring pass), returned as fresh tensors with every .grad dropped afterwards, so that the
  // training step's zero_grad/backward is unaffected. Its count is CREST's stat crest_gradient_evals.
  context_.parameters = model_->parameters();
  context_.loss_gradient = [this](const Tensor& indices, const Tensor& weights) {
    return distributed_ && !local_selection_ ? global_loss_gradient(indices, weights)
                                             : loss_gradient(indices, weights);
  };

  if (distributed_) {
    // Every rank starts from rank 0's model (initialised from the same seed anyway, as DDP makes sure).
    for (Tensor& p : context_.parameters) comm_->broadcast(p, 0);
    sync_buffers();
    averager_ = std::make_unique<GradientAverager>(optimizer_->parameters(), comm_, options.buckets);
  }
  if (local_selection_) {
    // This rank's shard of the training set: examples rank, rank + P, rank + 2P, ..., ⌈N / P⌉ of them on every rank
    // (the last wrapping around to the first examples, as PyTorch's DistributedSampler pads), so that everything a
    // selector derives from its data set's size (epochs, CREST's schedules) agrees across ranks. The selector sees
    // only these, numbered 0..⌈N / P⌉ - 1, and the trainer maps its choices back to the data set.
    const int64_t n = data_.train.size(), per_rank = (n + world_ - 1) / world_;
    std::vector<int32_t> shard;
    for (int64_t k = 0; k < per_rank; ++k) shard.push_back(static_cast<int32_t>((rank_ + k * world_) % n));
    shard_ = Tensor::from_vector(shard, {static_cast<int64_t>(shard.size())}, device);
    context_.labels = index_select(data_.train.labels, shard_);
    context_.dataset_size = shard_.numel();
    context_.logits = [this](const Tensor& indices) { return scoring_logits(index_select(shard_, indices)); };
    context_.loss_gradient = [this](const Tensor& indices, const Tensor& weights) {
      return loss_gradient(index_select(shard_, indices), weights);
    };
    context_.mean_over_ranks = [this](double value) {
      std::vector<double> v{value};
      comm_->all_reduce(v, ReduceOp::Avg);
      return v[0];
    };
  }
}

LossGradient Trainer::loss_gradient(const Tensor& indices, const Tensor& weights) {
  for (Tensor& p : context_.parameters) p.zero_grad();
  LossGradient r;
  try {
    EvalModeScope eval_mode(*model_);
    Tensor logits = model_->forward(gather_batch(data_.train, indices));
    Tensor loss = weighted_mean(cross_entropy(logits, gather_labels(data_.train, indices)), weights);
    loss.backward();
    r.loss = loss.detach();
  } catch (...) {
    for (Tensor& p : context_.parameters) p.zero_grad();
    throw;
  }
  for (Tensor& p : context_.parameters) {
    const Tensor g = p.grad();
    r.gradients.push_back(g.defined() ? g : Tensor::zeros(p.shape(), DType::F32, p.device()));
    p.zero_grad();
  }
  return r;
}

// Note [data-parallel selection]: a run of P processes trains each step on P b examples, b on each rank, with the
// gradients averaged (optim/distributed.h). Which examples, is --selection's choice:
// - global (the default): every rank runs the same selector, built for batch P b and pre-sample P B from the same
//   seed, and trains on its part of the selection (part_of: contiguous, as even as possible; weights rescaled by
//   P n_r / n so that the average over ranks is the single process's weighted mean). The work a selector asks of
//   the model is split: ScoringContext::logits scores each rank's part of the candidates and all-gathers the
//   logits, loss_gradient sums the ranks' parts, and observe() sees the whole batch's logits and losses, gathered.
//   Every rank then holds the same bytes and makes the same choices (the selectors' kernels are deterministic), so
//   the run is one process with batch P b and pre-sample P B, up to the order of floating-point sums: uniform's
//   shared epoch order sharded as a distributed sampler does, importance sampling's gathered pre-sample scores,
//   InfoBatch's gathered losses. A rank whose part is empty (a batch shorter than P) trains on one example at
//   weight 0. Augmentation draws example j of the global batch from counter offset + j on every rank.
// - local: each rank's selector has b, B and a seed of its own and sees only its shard of the data (examples rank,
//   rank + P, ..., ⌈N / P⌉ on each): P independent selections on (nearly) disjoint shards with averaged gradients.
//   Importance sampling's τ and CREST's model check and curvature are averaged across ranks
//   (ScoringContext::rank_mean), so all switch, check and select again at the same steps; nothing else is
//   communicated. Augmentation reserves b counters per rank each step. What differs from one process: each rank's
//   pre-sample, coresets and pruning see N / P examples, and examples are never compared across shards.
Tensor Trainer::global_logits(const Tensor& indices) {
  const int64_t n = indices.numel();
  const Part part = part_of(n, rank_, world_);
  const Tensor mine = part.count > 0 ? scoring_logits(indices.rows(part.begin, part.begin + part.count))
                                     : Tensor::zeros({0, data_.train.num_classes}, DType::F32, device_);
  scored_ += n - part.count;  // every rank counts the whole pre-sample, as one process would
  return gather_parts(mine, n);
}

Tensor Trainer::gather_parts(const Tensor& mine, int64_t n) {
  // Parts are padded to ⌈n / P⌉ rows for the all-gather; a part of that many rows already goes as it is.
  const int64_t chunk = (n + world_ - 1) / world_;
  Tensor padded = mine;
  if (mine.size(0) != chunk) {
    const int64_t count = part_of(n, rank_, world_).count;
    Shape shape = mine.shape();
    shape[0] = chunk;
    padded = Tensor::zeros(shape, mine.dtype(), device_);
    if (count > 0) padded.rows(0, count).copy_(mine.rows(0, count));
  }
  const Tensor all = comm_->all_gather(padded);  // rank r's rows at [r chunk, r chunk + count_r)
  if (n == chunk * world_) return all;
  std::vector<int32_t> rows;
  for (int r = 0; r < world_; ++r) {
    const Part p = part_of(n, r, world_);
    for (int64_t i = 0; i < p.count; ++i) rows.push_back(static_cast<int32_t>(r * chunk + i));
  }
  return index_select(all, Tensor::from_vector(rows, {n}, device_));
}

LossGradient Trainer::global_loss_gradient(const Tensor& indices, const Tensor& weights) {
  const int64_t n = indices.numel();
  const Part part = part_of(n, rank_, world_);
  // Each rank's weighted mean over its part, scaled so that the ranks' average is Σ w_i ℓ_i / n; a rank without a
  // part contributes one example at weight 0.
  LossGradient r =
      part.count > 0
          ? loss_gradient(indices.rows(part.begin, part.begin + part.count),
                          scale(weights.rows(part.begin, part.begin + part.count),
                                static_cast<float>(world_ * part.count) / static_cast<float>(n)))
          : loss_gradient(indices.rows(0, 1), Tensor::zeros({1}, DType::F32, device_));
  comm_->all_reduce(r.loss, ReduceOp::Avg);
  for (Tensor& g : r.gradients) comm_->all_reduce(g, ReduceOp::Avg);
  return r;
}

void Trainer::sync_buffers() {
  if (!distributed_) return;
  for (auto& [name, buffer] : model_->named_buffers()) comm_->broadcast(buffer, 0);
}

double Trainer::agreed_time(double seconds) {
  if (!distributed_ || options_.time_budget_s <= 0) return seconds;
  std::vector<double> v{seconds};
  comm_->broadcast(v, 0);
  return v[0];
}

// Note [captured steps]: with --cuda-graphs the training pass of a step (training_pass: gather, forward, loss,
// backward, clipping, update) is captured as a CUDA graph (Note [cuda graphs] in core/cuda_graph.h) and replayed,
// one launch in place of hundreds, and so is the selectors' no-gradient scoring pass (scoring_logits: importance
// sampling's pre-sample, selective backprop's candidates), into a graph per size of its own. The selector stays
// outside: its choice, however made (pre-sample scoring, host
// decisions such as importance sampling's switch, CREST's coresets), is copied into the graph's own index and
// weight tensors before the replay, and it observes copies of the graph's logits and losses after it. Values that
// change from step to step reach the captured kernels through device cells written before each replay: the learning
// rate (SgdStep::lr_cell) and the augmentation stream's offset at the step's start (Note [captured draws]). A
// replayed step therefore computes exactly what the uncaptured one does, bit for bit (tests/apps/test_cuda_graphs).
// A graph is fixed to its batch size: each size is captured on its second pass (the first runs uncaptured and
// creates what a pass creates once: momentum buffers, convolution plans, cuDNN's timed algorithm choices, library
// handles), up to kMaxCapturedSizes sizes of each kind (each graph keeps its pass's memory); passes of other sizes
// run uncaptured.
// Resuming or loading weights drops the graphs, whose addresses may be gone. Not captured: data-parallel runs (their
// collectives and hooks), Adam (host step counts), dropout layers (their generators have no device cell; capturing
// them fails in one line) and anything that waits for the device inside the pass.
namespace {
constexpr size_t kMaxCapturedSizes = 4;
}  // namespace

struct Trainer::CapturedPass {
  explicit CapturedPass(Device device) : graph(device) {}
  CudaGraph graph;
  Tensor indices, weights;  // the graph's inputs, written before each replay
  PassOutputs out;          // refilled by each replay
};

Trainer::CapturedPass* Trainer::captured_pass(CapturedPasses& passes, int64_t n,
                                               const std::function<void(CapturedPass&)>& record, const char* what) {
  if (auto it = passes.graphs.find(n); it != passes.graphs.end()) return it->second.get();
  if (passes.seen[n]++ == 0 || passes.graphs.size() >= kMaxCapturedSizes) return nullptr;
  auto pass = std::make_unique<CapturedPass>(device_);
  pass->indices = Tensor::empty({n}, DType::I32, device_);
  pass->weights = Tensor::empty({n}, DType::F32, device_);
  pass->graph.capture([&] { record(*pass); }, what);
  return passes.graphs.emplace(n, std::move(pass)).first->second.get();
}

Trainer::CapturedPass* Trainer::captured_training_pass(int64_t n) {
  Generator view(augment_gen_.seed(), 0);  // offsets from the cell's value (Note [captured draws])
  view.set_device_base(reinterpret_cast<const uint64_t*>(augment_cell_.data<int64_t>()));
  optimizer_->set_lr_cell(lr_cell_.data<float>());
  try {
    CapturedPass* pass = captured_pass(
        training_graphs_, n,
        [&](CapturedPass& p) { p.out = training_pass(p.indices, p.weights, options_.augment ? &view : nullptr); },
        "the training step (--cuda-graphs)");
    optimizer_->set_lr_cell(nullptr);
    return pass;
  } catch (...) {
    optimizer_->set_lr_cell(nullptr);
    throw;
  }
}

void Trainer::drop_captured_passes() {
  training_graphs_ = {};
  scoring_graphs_ = {};
}

Trainer::~Trainer() = default;

Progress Trainer::progress() const { return Progress{steps_, planned_steps(), training_s_, options_.time_budget_s}; }

int64_t Trainer::planned_steps() const {
  if (options_.iterations > 0) return options_.iterations;
  const int64_t b = global_batch();
  return options_.example_budget > 0 ? (options_.example_budget + b - 1) / b : 0;
}

Tensor Trainer::scoring_logits(const Tensor& indices) {
  scored_ += indices.numel();
  auto forward = [this](const Tensor& rows) {
    NoGradGuard no_grad;
    MatmulPrecisionScope precision(score_precision_);
    EvalModeScope eval_mode(*model_);
    return model_->forward(gather_batch(data_.train, rows));
  };
  // With --cuda-graphs the scoring pass is captured too, per size (Note [captured steps]).
  CapturedPass* pass =
      options_.cuda_graphs
          ? captured_pass(scoring_graphs_, indices.numel(), [&](CapturedPass& p) { p.out.logits = forward(p.indices); },
                          "the scoring pass (--cuda-graphs)")
          : nullptr;
  if (!pass) return forward(indices);
  pass->indices.copy_(indices);
  pass->graph.replay();
  return pass->out.logits.clone();  // the selector may keep it; the next replay refills the graph's
}

double Trainer::budget_fraction() const {
  double f = 0;
  if (options_.iterations > 0) f = std::max(f, static_cast<double>(steps_) / static_cast<double>(options_.iterations));
  if (options_.time_budget_s > 0) f = std::max(f, training_s_ / options_.time_budget_s);
  if (options_.example_budget > 0)
    f = std::max(f, static_cast<double>(examples_) / static_cast<double>(options_.example_budget));
  return std::min(f, 1.0);
}

void Trainer::step() {
  model_->train();
  context_.progress = budget_fraction();
  // The selector's share of the step, by the host clock: selectors that read device values (importance sampling,
  // CREST, selective backprop) wait inside it, the others only queue work (Note [fair clock]).
  const auto select_start = Clock::now();
  const Selection selection = selector_->select(context_);
  selection_s_ += std::chrono::duration<double>(Clock::now() - select_start).count();
  // This rank's examples (data set indices) and weights, and where they start in the step's augmentation counters
  // (Note [data-parallel selection]); in one process, the whole selection.
  Selection batch = selection;
  int64_t trained = selection.indices.numel(), augment_offset = 0, augment_span = selection.indices.numel();
  if (local_selection_) {
    batch.indices = index_select(shard_, selection.indices);
    augment_offset = rank_ * options_.selection.batch;
    augment_span = world_ * options_.selection.batch;
  } else if (distributed_) {
    const int64_t n = selection.indices.numel();
    const Part part = part_of(n, rank_, world_);
    augment_offset = part.begin;
    if (part.count == 0) {
      batch = {selection.indices.rows(0, 1), Tensor::zeros({1}, DType::F32, device_)};
    } else {
      batch.indices = selection.indices.rows(part.begin, part.begin + part.count);
      batch.weights = selection.weights.rows(part.begin, part.begin + part.count);
      if (world_ * part.count != n)
        batch.weights = scale(batch.weights, static_cast<float>(world_ * part.count) / static_cast<float>(n));
    }
  }
  if (trained_counts_.defined()) {  // the whole selection: the same tables on every rank
    count_indices(selection.indices, trained_counts_);
    scatter_losses(selection.indices, selection.weights, last_weights_);
  }
  optimizer_->set_lr(schedule_->lr(progress()));
  const uint64_t augment_start = augment_gen_.offset() + static_cast<uint64_t>(augment_offset);
  PassOutputs out;
  if (CapturedPass* pass = options_.cuda_graphs ? captured_training_pass(batch.indices.numel()) : nullptr) {
    // The inputs into the graph's own tensors, the step's values into its cells, one launch (Note [captured steps]).
    pass->indices.copy_(batch.indices);
    pass->weights.copy_(batch.weights);
    fill_(lr_cell_, optimizer_->lr());
    SIEVE_CHECK(augment_start < (uint64_t{1} << 53), "the augmentation stream's offset ", augment_start,
                " is beyond what --cuda-graphs' cell takes exactly (2^53)");
    fill_(augment_cell_, static_cast<double>(augment_start));
    pass->graph.replay();
    // The graph refills its outputs at every replay: the selector gets copies it may keep.
    out = {pass->out.logits.clone(), pass->out.labels.clone(), pass->out.losses.clone(), pass->out.loss};
  } else if (options_.augment) {
    Generator view(augment_gen_.seed(), augment_start);
    out = training_pass(batch.indices, batch.weights, &view);
  } else {
    out = training_pass(batch.indices, batch.weights, nullptr);
  }
  if (options_.augment) augment_gen_.advance(static_cast<uint64_t>(augment_span));
  record_first_nonfinite(out.loss, steps_ + 1, diverged_step_, diverged_loss_);  // Note [divergence]
  const auto observe_start = Clock::now();
  if (distributed_ && !local_selection_) {
    // The selector sees the whole step: every rank's logits and losses, gathered (Note [data-parallel selection]).
    const int64_t n = selection.indices.numel();
    selector_->observe(selection, gather_parts(out.logits, n), gather_labels(data_.train, selection.indices),
                       gather_parts(out.losses, n));
  } else {
    selector_->observe(selection, out.logits, out.labels, out.losses);
  }
  selection_s_ += std::chrono::duration<double>(Clock::now() - observe_start).count();
  steps_++;
  if (local_selection_) {  // every rank counts the examples of all (local batches may differ in length)
    std::vector<double> count{static_cast<double>(trained)};
    comm_->all_reduce(count, ReduceOp::Sum);
    trained = static_cast<int64_t>(count[0]);
  }
  examples_ += trained;
}

Trainer::PassOutputs Trainer::training_pass(const Tensor& indices, const Tensor& weights, Generator* augment) {
  const Tensor x = augment ? gather_batch(data_.train, indices, Augment{true, 4}, *augment)
                           : gather_batch(data_.train, indices);
  const Tensor y = gather_labels(data_.train, indices);
  const Tensor logits = model_->forward(x);
  const Tensor losses = cross_entropy(logits, y);
  Tensor loss = weighted_mean(losses, weights);
  optimizer_->zero_grad();
  if (averager_) averager_->prepare();
  loss.backward();
  if (averager_) averager_->finish();  // the gradients are the ranks' average from here
  // The norm stays on the device: nothing here waits for the GPU.
  if (options_.clip_grad_norm > 0) clip_grad_norm(optimizer_->parameters(), options_.clip_grad_norm);
  optimizer_->step();
  return {logits.detach(), y, losses.detach(), loss.detach()};
}

double Trainer::evaluate_loss(const Dataset& d, double* accuracy) {
  if (!distributed_) {
    const ClassifierEvaluation e = evaluate_classifier(*model_, d);
    if (accuracy) *accuracy = e.accuracy;
    return e.loss;
  }
  // Each rank evaluates its part of the set; sums and counts are reduced.
  const Part part = part_of(d.size(), rank_, world_);
  ClassifierEvaluation e;
  if (part.count > 0) e = evaluate_classifier(*model_, d.rows(part.begin, part.begin + part.count));
  const double n = static_cast<double>(e.examples);
  std::vector<double> sums{e.loss * n, std::round(e.accuracy * n), n};
  comm_->all_reduce(sums, ReduceOp::Sum);
  if (accuracy) *accuracy = sums[1] / sums[2];
  return sums[0] / sums[2];
}

EvalRecord Trainer::evaluate() {
  sync_buffers();  // rank 0's batch-norm statistics: one model is evaluated, and checkpointed
  EvalModeScope eval_mode(*model_);
  EvalRecord r = record();
  r.train_loss = evaluate_loss(train_subset_, nullptr);
  r.test_loss = evaluate_loss(test_eval_, &r.test_accuracy);
  return r;
}

EvalRecord Trainer::record() {
  EvalRecord r;
  r.sampler = selector_->name();
  r.step = steps_;
  r.time_s = training_s_;
  r.train_loss = r.test_loss = r.test_accuracy = std::numeric_limits<double>::quiet_NaN();
  r.selector_stats = selector_->stats();
  for (const auto& [key, value] : r.selector_stats) {
    if (key == "tau") r.tau = value;
    if (key == "importance_on") r.importance_on = value != 0;
    if (key == "importance_fraction") r.importance_fraction = value;
  }
  r.lr = optimizer_->lr();
  r.examples = examples_;
  r.scored = scored_;
  if (local_selection_) {  // each rank scores its own pre-samples
    std::vector<double> scored{static_cast<double>(scored_)};
    comm_->all_reduce(scored, ReduceOp::Sum);
    r.scored = static_cast<int64_t>(scored[0]);
  }
  r.selection_s = selection_s_;
  r.epochs = static_cast<double>(examples_) / static_cast<double>(data_.train.size());
  return r;
}

// Note [checkpoint contents]: the model under its own names (as a Python user expects), the optimizer under
// "optimizer.", the selector's and the trainer's scalars and generators as metadata. The run's options are
// recorded too, and a resume refuses a checkpoint of another model, sampler, optimizer or sequence view
// (checkpoints written before the optimizer and the view were recorded are SGD runs on images).
void Trainer::save_checkpoint(const std::string& path) {
  sync_buffers();
  // Note [data-parallel checkpoints]: every rank holds the same model, optimizer and (with global selection)
  // selector, so rank 0 writes them; with local selection each other rank's selector goes to rank 0 as bytes and
  // into the file under "rank<r>.selector.". All ranks wait until the file is complete, so a rank that fails next
  // cannot end the run during the write (and the write is atomic anyway, Note [atomic save]).
  CheckpointState rank_state;
  if (local_selection_ && rank_ > 0) selector_->save_state(rank_state, "rank" + std::to_string(rank_) + ".selector.");
  const std::vector<std::string> parts =
      local_selection_ ? comm_->gather(encode_state(rank_state), 0) : std::vector<std::string>{};
  comm_->barrier();  // every rank has reached the checkpoint
  if (comm_->is_root()) {
    CheckpointState state;
    add_module_state(state, *model_);
    add_optimizer_state(state, *optimizer_);
    selector_->save_state(state, "selector.");
    state.set_string("model", options_.model);
    state.set_string("sampler", selector_->name());
    state.set_string("optimizer", options_.optimizer);
    state.set_string("sequence", describe_sequence(options_));
    state.set_int("distributed.processes", world_);
    state.set_string("distributed.selection", local_selection_ ? "local" : "global");
    state.set_int("distributed.batch", options_.selection.batch);
    description_.save(state);  // Note [data description]
    StateArchive ar = StateArchive::writer(state);
    archive_state(ar, path);
    for (size_t r = 1; r < parts.size(); ++r) {
      CheckpointState other = decode_state(parts[r]);
      state.add_tensors(other.tensors);
      state.metadata.insert(other.metadata.begin(), other.metadata.end());
    }
    ::sieve::save_checkpoint(path, state);
  }
  comm_->barrier();
}

void Trainer::resume(const std::string& path) { resume(load_checkpoint(path), path); }

void Trainer::resume(const CheckpointState& state, const std::string& path) {
  drop_captured_passes();
  SIEVE_CHECK(state.get_string("model") == options_.model, path, ": a checkpoint of model ", state.get_string("model"),
              ", not of --model ", options_.model);
  SIEVE_CHECK(state.get_string("sampler") == selector_->name(), path, ": a checkpoint of sampler ",
              state.get_string("sampler"), ", not of --sampler ", selector_->name());
  const std::string optimizer = state.has("optimizer") ? state.get_string("optimizer") : "sgd";
  SIEVE_CHECK(optimizer == options_.optimizer, path, ": a checkpoint of optimizer ", optimizer,
              ", not of --optimizer ", options_.optimizer);
  const std::string sequence = state.has("sequence") ? state.get_string("sequence") : "none";
  SIEVE_CHECK(sequence == describe_sequence(options_), path, ": a checkpoint of sequence view ", sequence,
              ", not of ", describe_sequence(options_));
  if (DataDescription::in_checkpoint(state)) {  // older checkpoints have none (Note [data description])
    const DataDescription saved = DataDescription::from_checkpoint(state, path);
    saved.check_matches(description_, path);
    SIEVE_CHECK(saved.pixel_order == description_.pixel_order, path, ": a checkpoint of another pixel order");
  }
  // A checkpoint of global selection continues on any number of processes whose batches add up to the same global
  // batch (its selector was built for it); one of local selection only on as many processes as wrote it, each rank
  // taking its own selector back (Note [data-parallel checkpoints]).
  const int64_t processes = state.has("distributed.processes") ? state.get_int("distributed.processes") : 1;
  const std::string selection = state.has("distributed.selection") ? state.get_string("distributed.selection")
                                                                     : "global";
  const bool saved_local = selection == "local" && processes > 1;
  if (saved_local || local_selection_) {
    SIEVE_CHECK(saved_local == local_selection_ && processes == world_, path, ": a checkpoint of ", processes,
                " process(es) with --selection ", selection, "; resume it with ", processes,
                " process(es) and --selection ", selection, " (this run: ", world_, ", --selection ",
                options_.selection_mode, ")");
  } else if (state.has("distributed.batch")) {
    const int64_t saved = processes * state.get_int("distributed.batch");
    SIEVE_CHECK(saved == global_batch(), path, ": a checkpoint of global batch ", saved, " (", processes,
                " process(es) x --batch ", state.get_int("distributed.batch"), "), this run's is ", global_batch(),
                " (", world_, " x ", options_.selection.batch, "); choose --batch so that processes x batch = ",
                saved);
  }
  load_module_state(state, *model_);
  optimizer_->load_state(optimizer_state(state));
  selector_->load_state(state, local_selection_ && rank_ > 0 ? "rank" + std::to_string(rank_) + ".selector."
                                                              : std::string("selector."));
  StateArchive ar = StateArchive::reader(state);
  archive_state(ar, path);
}

// The trainer's own state: counters, clocks, the --dump-selection tables and generators. The keys that older
// checkpoints lack keep their defaults there (Note [state archive] in core/checkpoint.h).
void Trainer::archive_state(StateArchive& ar, const std::string& path) {
  ar.scalar("step", steps_);
  ar.scalar("examples", examples_);
  ar.scalar("scored", scored_);
  ar.scalar("training_seconds", training_s_);
  if (ar.has("selection_seconds"))
    ar.scalar("selection_seconds", selection_s_);
  else
    selection_s_ = 0.0;
  if (trained_counts_.defined()) {  // loaded into the tables the run keeps, on their device
    SIEVE_CHECK(ar.has("dump.trained_counts") && ar.has("dump.last_weights"), path, ": --dump-selection needs "
                "per-example counts from the start of the run, and this checkpoint has none (it was written without "
                "--dump-selection)");
    Tensor counts = trained_counts_, weights = last_weights_;
    ar.tensor("dump.trained_counts", counts, DType::I32);
    ar.tensor("dump.last_weights", weights, DType::F32);
    if (ar.loading()) {
      SIEVE_CHECK(counts.numel() == trained_counts_.numel() && weights.numel() == last_weights_.numel(), path,
                  ": per-example counts of ", counts.numel(), " examples for a data set of ", trained_counts_.numel());
      trained_counts_.copy_(counts.reshape({counts.numel()}));
      last_weights_.copy_(weights.reshape({weights.numel()}));
    }
  }
  ar.generator("rng.augment", augment_gen_);
  if (ar.has("rng.diagnostics")) ar.generator("rng.diagnostics", diagnostics_gen_);
}

// Note [score diagnostics]: --diagnose-scores N measures, every N steps, how well the upper bound and the loss rank
// the examples by their exact gradient norms and what variance sampling by each would give (Katharopoulos & Fleuret
// 2018, figures 1 and 2; sampling/score_diagnostics.h). It runs between steps, off the training clock (it costs B
// one-example backward passes), on a pre-sample drawn from a stream of its own, in evaluation mode with every
// gradient dropped afterwards, and its scoring pass is not counted as scored: the run trains exactly as without it.
ScoreDiagnostics Trainer::diagnose_scores() {
  const int64_t scored = scored_;
  const Tensor indices = randint({options_.selection.presample}, context_.dataset_size, diagnostics_gen_, device_);
  ScoreDiagnostics d = ::sieve::diagnose_scores(context_, indices);
  scored_ = scored;
  return d;
}

void Trainer::init_from(const std::string& path, bool reset_head) {
  drop_captured_passes();
  CheckpointState state = load_checkpoint(path);
  if (reset_head) {
    // The classifier is the module's last parameters (the final Linear's weight and bias in every sieve model):
    // they are taken from the new model itself, so loading leaves them as initialised.
    const auto params = model_->named_parameters();
    SIEVE_CHECK(params.size() >= 2, "--reset-head: the model has no classifier to reset");
    for (size_t i = params.size() - 2; i < params.size(); ++i) {
      bool replaced = false;
      for (auto& [name, t] : state.tensors)
        if (name == params[i].first) {
          t = params[i].second.detach().to(Device::cpu());
          replaced = true;
        }
      if (!replaced) state.tensors.emplace_back(params[i].first, params[i].second.detach().to(Device::cpu()));
    }
  }
  load_module_state(state, *model_);
}

// Note [divergence]: a training loss that is NaN or infinite ends the run. Every step records the first bad step on
// the device (Note [divergence flag], one kernel, no host round trip); the flag is read where the loop waits for the
// device anyway (before an evaluation, a checkpoint and the end), after every step on the CPU (where it costs
// nothing), and every kDivergenceCheckEvery steps on a GPU. The run then stops with a final record marked
// `diverged` that names the first bad step exactly, however late the flag was read, and no checkpoint is written
// after it: the last checkpoint on disk predates the divergence. A selector that refuses non-finite scores
// (the importance samplers, Note [non-finite scores] in sampling/importance.h) may throw a step after the loss went
// bad; the divergence is then what is reported.
EvalRecord Trainer::run(const std::function<void(const EvalRecord&)>& on_record,
                        const DiagnosticsSink& on_diagnostics) {
  const bool by_time = options_.time_budget_s > 0;
  const int64_t every_steps = options_.eval_every > 0 ? options_.eval_every
                              : by_time            ? 0
                                                   : std::max<int64_t>(1, planned_steps() / 10);
  const double every_s = by_time && options_.eval_every == 0 ? options_.time_budget_s / 10 : 0;
  const bool checkpointing = !options_.checkpoint.empty() || !options_.checkpoint_dir.empty();
  const int64_t checkpoint_every = checkpointing ? options_.checkpoint_every : 0;
  const int64_t check_every = device_.is_cpu() ? 1 : kDivergenceCheckEvery;
  double next_eval_s = every_s;
  while (every_s > 0 && next_eval_s <= training_s_) next_eval_s += every_s;  // a resumed run
  if (steps_ == 0) on_record(evaluate());
  StepClock clock(device_);
  auto finish_diverged = [&] {
    EvalRecord r = diverged_record();
    if (!options_.dump_selection.empty()) write_selection_dump(options_.dump_selection);
    on_record(r);
    return r;
  };
  while (true) {
    // Only training is timed: the clock runs from here to the device synchronisation before an evaluation or a
    // checkpoint, which are not counted (Note [fair clock] for what each check counts).
    clock.start(training_s_);
    bool done = false, eval_due = false, checkpoint_due = false, diagnostics_due = false;
    int signal = 0;
    try {
      while (!done && !eval_due && !checkpoint_due && !diagnostics_due && signal == 0) {
        step();
        training_s_ = agreed_time(clock.after_step());
        done = (options_.iterations > 0 && steps_ >= options_.iterations) ||
               (by_time && training_s_ >= options_.time_budget_s) ||
               (options_.example_budget > 0 && examples_ >= options_.example_budget);
        eval_due = every_steps > 0 ? steps_ % every_steps == 0 : training_s_ >= next_eval_s;
        checkpoint_due = checkpoint_every > 0 && steps_ % checkpoint_every == 0;
        diagnostics_due = options_.diagnose_scores_every > 0 && steps_ % options_.diagnose_scores_every == 0;
        if (steps_ % check_every == 0 && divergence()) break;
        signal = agreed_signal();
      }
    } catch (const Error&) {
      // Every rank of a global selection throws together (the same selector on the same values) and may agree on
      // the divergence; a local one's error ends the run (sieve-train aborts every rank).
      if (local_selection_ || !divergence()) throw;
      training_s_ = agreed_time(clock.synchronized());
      return finish_diverged();
    }
    training_s_ = agreed_time(clock.synchronized());
    if (divergence()) return finish_diverged();
    if (signal != 0) {  // Note [interrupts]: the step is complete; save it and stop, without evaluating
      if (checkpointing) save_and_rotate();
      EvalRecord r = record();
      r.interrupted = true;
      r.signal = signal_name(signal);
      r.signal_number = signal;
      on_record(r);
      return r;
    }
    if (diagnostics_due && on_diagnostics) on_diagnostics(steps_, training_s_, diagnose_scores());
    if (checkpoint_due || (done && checkpointing)) save_and_rotate();
    if (!eval_due && !done) continue;
    while (every_s > 0 && next_eval_s <= training_s_) next_eval_s += every_s;
    EvalRecord r = evaluate();
    r.final = done;
    if (done && !options_.dump_selection.empty()) write_selection_dump(options_.dump_selection);
    on_record(r);
    if (done) return r;
  }
}

int Trainer::agreed_signal() {
  if (!interrupt_) return 0;
  const int signal = interrupt_();
  if (!distributed_) return signal;
  // A signal reaches the ranks at different moments (or only some of them): all stop after the step in which the
  // first of them saw one.
  std::vector<double> v{static_cast<double>(signal)};
  comm_->all_reduce(v, ReduceOp::Max);
  return static_cast<int>(v[0]);
}

std::string Trainer::checkpoint_path() const {
  if (options_.checkpoint_dir.empty()) return options_.checkpoint;
  return options_.checkpoint_dir + "/step-" + std::to_string(steps_) + ".safetensors";
}

void Trainer::save_and_rotate() {
  save_checkpoint(checkpoint_path());
  if (options_.checkpoint_dir.empty() || !comm_->is_root()) return;
  // The newest keep_checkpoints files of the folder stay; a failed save above threw before anything was removed.
  std::vector<std::pair<int64_t, std::filesystem::path>> saved = list_step_checkpoints(options_.checkpoint_dir);
  for (size_t i = 0; i + static_cast<size_t>(options_.keep_checkpoints) < saved.size(); ++i)
    std::filesystem::remove(saved[i].second);
}

std::vector<std::pair<int64_t, std::filesystem::path>> list_step_checkpoints(const std::string& folder) {
  std::vector<std::pair<int64_t, std::filesystem::path>> out;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view prefix = "step-", suffix = ".safetensors";
    if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    out.emplace_back(std::stoll(digits), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(signal);
  }
}

std::optional<std::pair<int64_t, float>> Trainer::divergence() {
  if (divergence_) return divergence_;
  // Read in place on the CPU, where it is read after every step; copied from a GPU, which waits for the device.
  const int64_t step = device_.is_cpu() ? *diverged_step_.data<int64_t>()
                                        : diverged_step_.to(Device::cpu()).to_vector<int64_t>()[0];
  if (distributed_) {
    // Every rank's first bad step and loss, in its own slots of a sum (a NaN stays NaN): the earliest one counts.
    std::vector<double> all(2 * static_cast<size_t>(world_), 0.0);
    all[2 * rank_] = static_cast<double>(step);
    all[2 * rank_ + 1] = step >= 0 ? static_cast<double>(diverged_loss_.item()) : 0.0;
    comm_->all_reduce(all, ReduceOp::Sum);
    for (int r = 0; r < world_; ++r) {
      const auto s = static_cast<int64_t>(all[2 * r]);
      if (s >= 0 && (!divergence_ || s < divergence_->first))
        divergence_ = std::make_pair(s, static_cast<float>(all[2 * r + 1]));
    }
    return divergence_;
  }
  if (step >= 0) divergence_ = std::make_pair(step, diverged_loss_.item());
  return divergence_;
}

EvalRecord Trainer::diverged_record() {
  EvalRecord r = evaluate();  // the diverged model's losses: NaN, written as null
  r.final = true;
  r.diverged = true;
  r.diverged_step = divergence_->first;
  r.diverged_loss = divergence_->second;
  return r;
}

void StepClock::start(double seconds_so_far) {
  synchronize(device_);  // nothing queued before the start is counted
  offset_s_ = seconds_so_far;
  start_ = Clock::now();
}

double StepClock::after_step() {
  events_[next_].record(device_);
  next_ ^= 1;
  events_[next_].wait();  // the event recorded after the step before this one
  return offset_s_ + std::chrono::duration<double>(Clock::now() - start_).count();
}

double StepClock::synchronized() {
  synchronize(device_);
  events_[0].wait();
  events_[1].wait();
  return offset_s_ + std::chrono::duration<double>(Clock::now() - start_).count();
}

void Trainer::write_selection_dump(const std::string& path) {
  SIEVE_CHECK(trained_counts_.defined(), "write_selection_dump: the trainer was built without --dump-selection, so "
              "it kept no per-example counts");
  if (!comm_->is_root()) return;  // every rank holds the same tables (Note [data-parallel selection])
  const std::vector<int32_t> counts = trained_counts_.to(Device::cpu()).to_vector<int32_t>();
  const std::vector<float> weights = last_weights_.to(Device::cpu()).to_vector<float>();
  const std::vector<int32_t> labels = data_.train.labels.to(Device::cpu()).to_vector<int32_t>();
  std::vector<std::pair<std::string, std::vector<float>>> columns;
  for (const auto& [name, values] : selector_->example_columns()) {
    SIEVE_CHECK(values.numel() == static_cast<int64_t>(counts.size()), "write_selection_dump: the selector's column ",
                name, " has ", values.numel(), " entries for ", counts.size(), " examples");
    columns.emplace_back(name, values.to(Device::cpu()).to_vector<float>());
  }
  write_text_file(path, "selection dump", [&](std::ostream& out) {
    out << "example,label,times_trained,last_weight";
    for (const auto& column : columns) out << "," << column.first;
    out << "\n";
    auto number = [&](float v) {
      if (std::isnan(v)) return;  // empty: never set
      if (std::isinf(v)) {
        out << (v > 0 ? "inf" : "-inf");
        return;
      }
      out << v;
    };
    for (size_t i = 0; i < counts.size(); ++i) {
      out << i << "," << labels[i] << "," << counts[i] << ",";
      number(weights[i]);
      for (const auto& column : columns) {
        out << ",";
        number(column.second[i]);
      }
      out << "\n";
    }
  });
}

}  // namespace sieve
